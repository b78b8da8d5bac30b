//! Attention. Spec: Attention (opsets 23 and 24; `nonpad_kv_seqlen` from 24): 3-D inputs
//! `[batch, seq, heads·head_size]` (with `q_num_heads` / `kv_num_heads`) or 4-D
//! `[batch, heads, seq, head_size]`; past key/value concatenated into present; boolean or
//! additive `attn_mask` (padded to the total length), `is_causal` (upper-left aligned after the
//! past), group-query attention by repeating KV heads, `scale`, `softcap`, and the optional
//! `qk_matmul_output` (modes 0–3). Computed in f32 and cast back to the input dtype.

use candle_core::{DType, Device, Tensor, D};

use super::normalization::softmax_along;
use super::{input, Kernel, NodeCtx};
use crate::error::Result;

#[derive(Debug, Clone, Copy)]
struct AttentionAttrs {
    causal: bool,
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
    scale: Option<f32>,
    softcap: f32,
    qk_mode: i64,
}

pub fn attention(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let heads = |name: &str| ctx.attr(name).map(|a| a.i.max(1) as usize);
    let a = AttentionAttrs {
        causal: ctx.int("is_causal", 0) != 0,
        q_heads: heads("q_num_heads"),
        kv_heads: heads("kv_num_heads"),
        scale: ctx.attr("scale").map(|a| a.f),
        softcap: ctx.float("softcap", 0.0),
        qk_mode: ctx.int("qk_matmul_output_mode", 0),
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| run(&a, xs)))
}

/// `[b, s, h·d]` → `[b, h, s, d]`.
fn split_heads(x: &Tensor, heads: Option<usize>) -> candle_core::Result<Tensor> {
    let Some(h) = heads else { candle_core::bail!("3-D attention inputs need q_num_heads and kv_num_heads") };
    let (b, s, hidden) = x.dims3()?;
    x.reshape((b, s, h, hidden / h))?.transpose(1, 2)?.contiguous()
}

/// Additive bias (0 or -inf) from an attention mask: booleans select, floats add.
fn mask_bias(mask: &Tensor, kv_len: usize) -> candle_core::Result<Tensor> {
    let is_bool = mask.dtype() == DType::U8;
    let mut m = if is_bool {
        let zeros = Tensor::zeros(mask.shape(), DType::F32, mask.device())?;
        let neg = Tensor::full(f32::NEG_INFINITY, mask.shape(), mask.device())?;
        mask.where_cond(&zeros, &neg)?
    } else {
        mask.to_dtype(DType::F32)?
    };
    let short = kv_len.saturating_sub(m.dim(D::Minus1)?);
    if short > 0 {
        // A mask shorter than the keys leaves the extra keys masked out.
        let mut dims = m.dims().to_vec();
        *dims.last_mut().unwrap_or(&mut 0) = short;
        let pad = Tensor::full(f32::NEG_INFINITY, dims, m.device())?;
        m = Tensor::cat(&[&m, &pad], m.rank() - 1)?;
    }
    Ok(m)
}

/// `bias[i, j] = -inf` where key `j` lies after query `i` (queries start after `past` keys).
fn causal_bias(q_len: usize, kv_len: usize, past: usize, dev: &Device) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..q_len)
        .flat_map(|i| (0..kv_len).map(move |j| if j > i + past { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(v, (q_len, kv_len), dev)
}

/// Repeat each KV head `reps` times, interleaved: [h0, h0, h1, h1, …].
fn repeat_heads(x: &Tensor, reps: usize) -> candle_core::Result<Tensor> {
    if reps == 1 {
        return Ok(x.clone());
    }
    let (b, h, s, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, h, reps, s, d))?.reshape((b, h * reps, s, d))
}

fn run(a: &AttentionAttrs, xs: &[Option<&Tensor>]) -> candle_core::Result<Vec<Tensor>> {
    let opt = |i: usize| xs.get(i).copied().flatten();
    let q_in = input(xs, 0)?;
    let dtype = q_in.dtype();
    let f32s = |t: &Tensor| t.to_dtype(DType::F32);
    let (mut q, mut k, mut v) = (f32s(q_in)?, f32s(input(xs, 1)?)?, f32s(input(xs, 2)?)?);
    let three_d = q.rank() == 3;
    if three_d {
        q = split_heads(&q, a.q_heads)?;
        k = split_heads(&k, a.kv_heads)?;
        v = split_heads(&v, a.kv_heads)?;
    }
    let past_len = opt(4).map_or(Ok(0), |p| p.dim(2))?;
    if let Some(p) = opt(4) {
        k = Tensor::cat(&[&f32s(p)?, &k], 2)?;
    }
    if let Some(p) = opt(5) {
        v = Tensor::cat(&[&f32s(p)?, &v], 2)?;
    }
    let (present_k, present_v) = (k.clone(), v.clone());
    let (batch, q_heads, q_len, head) = q.dims4()?;
    let (kv_heads, kv_len) = (k.dim(1)?, k.dim(2)?);

    let dev = q.device().clone();
    let mut bias = match opt(3) {
        Some(m) => mask_bias(m, kv_len)?,
        None => Tensor::zeros((q_len, kv_len), DType::F32, &dev)?,
    };
    if a.causal {
        bias = bias.broadcast_add(&causal_bias(q_len, kv_len, past_len, &dev)?)?;
    }
    if let Some(lens) = opt(6) {
        let lens = super::int_values(lens)?;
        let pad: Vec<f32> = (0..batch)
            .flat_map(|b| {
                let n = lens.get(b).copied().unwrap_or(kv_len as i64);
                (0..kv_len).map(move |j| if (j as i64) < n { 0.0 } else { f32::NEG_INFINITY })
            })
            .collect();
        bias = bias.broadcast_add(&Tensor::from_vec(pad, (batch, 1, 1, kv_len), &dev)?)?;
    }

    if q_heads != kv_heads && kv_heads > 0 && q_heads % kv_heads == 0 {
        k = repeat_heads(&k, q_heads / kv_heads)?;
        v = repeat_heads(&v, q_heads / kv_heads)?;
    }
    let scale = a.scale.unwrap_or(1.0 / (head as f32).sqrt()) as f64;
    // The spec scales both sides by √scale before the product (it matters for overflow).
    let root = scale.sqrt();
    let mut scores = (q * root)?.matmul(&(k * root)?.transpose(2, 3)?.contiguous()?)?;
    if a.softcap > 0.0 {
        let cap = a.softcap as f64;
        scores = ((scores / cap)?.tanh()? * cap)?;
    }
    let biased = scores.broadcast_add(&bias)?;
    let probs = softmax_along(&biased, biased.rank() - 1, false)?;
    let qk = match a.qk_mode {
        2 => biased.clone(),
        3 => probs.clone(),
        _ => scores,
    };
    let mut y = probs.matmul(&v.contiguous()?)?;
    if three_d {
        let (b, h, s, d) = y.dims4()?;
        y = y.transpose(1, 2)?.reshape((b, s, h * d))?;
    }
    [y, present_k, present_v, qk].iter().map(|t| t.to_dtype(dtype)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    #[test]
    fn causal_single_head_attention_matches_hand_computation() {
        // q = k = [[1, 0], [0, 1]], v = [[1, 2], [3, 4]], scale 1: the first query sees only the
        // first key; the second sees both with scores [0, 1].
        let n = node("Attention", 3, vec![int("is_causal", 1), float("scale", 1.0)]);
        let k = build(&n, 23);
        let q = t(&[1, 1, 2, 2], &[1., 0., 0., 1.]);
        let v = t(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
        let y = k.run(&[Some(&q), Some(&q), Some(&v)]).unwrap();
        let w = 1f32.exp() / (1. + 1f32.exp());
        assert_close(&values(&y[0]), &[1., 2., (1. - w) + 3. * w, 2. * (1. - w) + 4. * w], 1e-6);
    }

    #[test]
    fn grouped_query_heads_share_kv_heads() {
        // Two query heads over one KV head: both heads attend to the same single key.
        let n = node("Attention", 3, vec![]);
        let k = build(&n, 23);
        let q = t(&[1, 2, 1, 2], &[1., 0., 0., 1.]);
        let kv = t(&[1, 1, 1, 2], &[5., 7.]);
        let y = k.run(&[Some(&q), Some(&kv), Some(&kv)]).unwrap();
        assert_eq!(y[0].dims(), &[1, 2, 1, 2]);
        assert_close(&values(&y[0]), &[5., 7., 5., 7.], 1e-6);
    }
}
