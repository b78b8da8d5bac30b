//! Attention and its recurrent relatives.
//!
//! - Attention (opsets 23 and 24; `nonpad_kv_seqlen` from 24): 3-D inputs
//!   `[batch, seq, heads·head_size]` (with `q_num_heads` / `kv_num_heads`) or 4-D
//!   `[batch, heads, seq, head_size]`; past key/value concatenated into present; boolean or
//!   additive `attn_mask` (padded to the total length), `is_causal` (upper-left aligned after the
//!   past), group-query attention by repeating KV heads, `scale`, `softcap`, and the optional
//!   `qk_matmul_output` (modes 0–3).
//! - RotaryEmbedding (23; and com.microsoft RotaryEmbedding 1, whose inputs come in the order
//!   `input, position_ids, cos_cache, sin_cache` and whose `position_ids` may be a single start
//!   offset): half-split or `interleaved` pairs, partial `rotary_embedding_dim`, `num_heads` for
//!   3-D input.
//! - LinearAttention (27): the `linear`, `gated`, `delta` and `gated_delta` recurrences over a
//!   `[batch, kv_heads, d_k, d_v]` state, run token by token, with group-query heads.
//! - CausalConvWithState (27): depthwise causal 1-D conv over `past_state ++ input`, optional
//!   bias and SiLU, the last `k − 1` positions carried out as `present_state`.
//!
//! All compute in f32 and cast back to the input dtype.

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

// ---- RotaryEmbedding --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct RopeAttrs {
    interleaved: bool,
    /// 0: rotate the whole head.
    rotary_dim: usize,
    num_heads: Option<usize>,
    /// com.microsoft: a one-element `position_ids` is the first token's position.
    offset_positions: bool,
}

impl RopeAttrs {
    fn from_ctx(ctx: &NodeCtx, offset_positions: bool) -> Self {
        RopeAttrs {
            interleaved: ctx.int("interleaved", 0) != 0,
            rotary_dim: ctx.int("rotary_embedding_dim", 0).max(0) as usize,
            num_heads: ctx.attr("num_heads").map(|a| a.i).filter(|&h| h > 0).map(|h| h as usize),
            offset_positions,
        }
    }
}

/// ONNX RotaryEmbedding: `X, cos_cache, sin_cache, position_ids?`.
pub fn rotary_embedding(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = RopeAttrs::from_ctx(ctx, false);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let positions = xs.get(3).copied().flatten();
        rotary(&a, input(xs, 0)?, input(xs, 1)?, input(xs, 2)?, positions)
    }))
}

/// com.microsoft RotaryEmbedding: `input, position_ids, cos_cache, sin_cache`.
pub fn rotary_embedding_ms(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = RopeAttrs::from_ctx(ctx, true);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        rotary(&a, input(xs, 0)?, input(xs, 2)?, input(xs, 3)?, Some(input(xs, 1)?))
    }))
}

/// Cache rows `[…positions, rot/2]` for the positions (`[batch, seq]`, or a start offset).
fn cache_rows(cache: &Tensor, positions: &Tensor, seq: usize, offset: bool) -> candle_core::Result<Tensor> {
    let ids = if offset && positions.rank() <= 1 && positions.elem_count() == 1 {
        let start = super::int_values(positions)?[0];
        Tensor::arange(start, start + seq as i64, positions.device())?.unsqueeze(0)?
    } else {
        positions.to_dtype(DType::I64)?
    };
    let mut dims = ids.dims().to_vec();
    dims.push(cache.dim(D::Minus1)?);
    cache.to_dtype(DType::F32)?.index_select(&ids.flatten_all()?, 0)?.reshape(dims)
}

fn rotary(
    a: &RopeAttrs,
    x_in: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    positions: Option<&Tensor>,
) -> candle_core::Result<Vec<Tensor>> {
    let half = cos.dim(D::Minus1)?;
    let x = x_in.to_dtype(DType::F32)?;
    // To [batch, seq, heads, head_size].
    let x = match x.rank() {
        4 => x.transpose(1, 2)?,
        3 => {
            let (b, s, hidden) = x.dims3()?;
            // Without num_heads (com.microsoft allows it) the head is what the cache rotates.
            let head = if a.rotary_dim > 0 { a.rotary_dim } else { 2 * half };
            let heads = a.num_heads.unwrap_or(hidden / head.max(1));
            if heads == 0 || hidden % heads != 0 {
                candle_core::bail!("RotaryEmbedding: hidden size {hidden} does not split into {heads} heads")
            }
            x.reshape((b, s, heads, hidden / heads))?
        }
        r => candle_core::bail!("RotaryEmbedding input must be 3-D or 4-D, got rank {r}"),
    };
    let (b, s, h, d) = x.dims4()?;
    let rot = if a.rotary_dim > 0 { a.rotary_dim } else { d };
    if rot != 2 * half || rot > d {
        candle_core::bail!("RotaryEmbedding: cache width {half} is not half the rotary dim {rot} (head size {d})")
    }
    let (cos, sin) = match positions {
        Some(p) => (cache_rows(cos, p, s, a.offset_positions)?, cache_rows(sin, p, s, a.offset_positions)?),
        None => (cos.to_dtype(DType::F32)?, sin.to_dtype(DType::F32)?),
    };
    // [batch, seq, 1, rot/2], shared by every head.
    let (cos, sin) = (cos.unsqueeze(D::Minus2)?, sin.unsqueeze(D::Minus2)?);
    let xr = x.narrow(3, 0, rot)?;
    let (x1, x2) = if a.interleaved {
        let pairs = xr.reshape((b, s, h, half, 2))?;
        (pairs.narrow(4, 0, 1)?.squeeze(4)?, pairs.narrow(4, 1, 1)?.squeeze(4)?)
    } else {
        (xr.narrow(3, 0, half)?, xr.narrow(3, half, half)?)
    };
    let real = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
    let imag = (x1.broadcast_mul(&sin)? + x2.broadcast_mul(&cos)?)?;
    let rotated = if a.interleaved {
        Tensor::stack(&[real, imag], 4)?.reshape((b, s, h, rot))?
    } else {
        Tensor::cat(&[real, imag], 3)?
    };
    let y = if rot < d { Tensor::cat(&[rotated, x.narrow(3, rot, d - rot)?], 3)? } else { rotated };
    let y = if x_in.rank() == 4 { y.transpose(1, 2)?.contiguous()? } else { y.reshape(x_in.shape())? };
    Ok(vec![y.to_dtype(x_in.dtype())?])
}

// ---- LinearAttention --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct LinearAttentionAttrs {
    q_heads: usize,
    kv_heads: usize,
    /// 0: 1/√d_k.
    scale: f32,
    /// The state decays by `exp(decay)` before each write (`gated`, `gated_delta`).
    gated: bool,
    /// The write is `β·(v − Sᵀk)` (`delta`, `gated_delta`).
    delta: bool,
}

pub fn linear_attention(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let rule = ctx.string("update_rule", "gated_delta");
    let (gated, delta) = match rule.as_str() {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        other => return Err(ctx.unsupported(&format!("update_rule {other:?}"))),
    };
    let (q_heads, kv_heads) = (ctx.int("q_num_heads", 0), ctx.int("kv_num_heads", 0));
    if q_heads <= 0 || kv_heads <= 0 || q_heads % kv_heads != 0 {
        return Err(crate::error::WickError::invalid(format!(
            "LinearAttention: q_num_heads {q_heads} must be a positive multiple of kv_num_heads {kv_heads}"
        )));
    }
    let a = LinearAttentionAttrs {
        q_heads: q_heads as usize,
        kv_heads: kv_heads as usize,
        scale: ctx.float("scale", 0.0),
        gated,
        delta,
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| run_linear_attention(&a, xs)))
}

fn run_linear_attention(a: &LinearAttentionAttrs, xs: &[Option<&Tensor>]) -> candle_core::Result<Vec<Tensor>> {
    let opt = |i: usize| xs.get(i).copied().flatten();
    let q_in = input(xs, 0)?;
    // [b, heads, T, width]; decay and beta too (their width is d_k or 1).
    let heads = |t: &Tensor, h: usize| split_heads(&t.to_dtype(DType::F32)?, Some(h));
    let q = heads(q_in, a.q_heads)?;
    let (k, v) = (heads(input(xs, 1)?, a.kv_heads)?, heads(input(xs, 2)?, a.kv_heads)?);
    let (b, _, steps, d_k) = q.dims4()?;
    let d_v = v.dim(3)?;
    let gate = |i: usize, wanted: bool, name: &str| match (opt(i), wanted) {
        (Some(g), true) => Ok(Some(g)),
        (None, false) => Ok(None),
        _ => Err(candle_core::Error::Msg(format!(
            "LinearAttention: {name} must be given exactly when the update rule uses it"
        ))),
    };
    let decay = gate(4, a.gated, "decay")?.map(|g| heads(g, a.kv_heads)).transpose()?;
    let beta = gate(5, a.delta, "beta")?.map(|g| g.dim(2).and_then(|w| heads(g, w))).transpose()?;
    let (mut state, state_dtype) = match opt(3) {
        Some(p) => (p.to_dtype(DType::F32)?, p.dtype()),
        None => (Tensor::zeros((b, a.kv_heads, d_k, d_v), DType::F32, q.device())?, q_in.dtype()),
    };
    if state.dims() != [b, a.kv_heads, d_k, d_v] {
        candle_core::bail!("LinearAttention: past_state {:?} is not [{b}, {}, {d_k}, {d_v}]", state.dims(), a.kv_heads)
    }
    let reps = a.q_heads / a.kv_heads;
    let mut outs = Vec::with_capacity(steps);
    for i in 0..steps {
        let at = |t: &Tensor| t.narrow(2, i, 1)?.contiguous();
        let (k_t, mut v_t) = (at(&k)?, at(&v)?);
        if let Some(g) = &decay {
            // [b, h, 1, d_k | 1] → one factor per state row.
            state = state.broadcast_mul(&at(g)?.exp()?.transpose(2, 3)?)?;
        }
        if let Some(beta) = &beta {
            let retrieved = k_t.matmul(&state)?;
            v_t = at(beta)?.broadcast_mul(&(v_t - retrieved)?)?;
        }
        state = (state + k_t.transpose(2, 3)?.matmul(&v_t)?)?;
        outs.push(at(&q)?.matmul(&repeat_heads(&state, reps)?.contiguous()?)?);
    }
    let scale = if a.scale == 0.0 { 1.0 / (d_k as f64).sqrt() } else { a.scale as f64 };
    let y = (Tensor::cat(&outs, 2)? * scale)?.transpose(1, 2)?.reshape((b, steps, a.q_heads * d_v))?;
    Ok(vec![y.to_dtype(q_in.dtype())?, state.to_dtype(state_dtype)?])
}

// ---- CausalConvWithState ----------------------------------------------------------------------

pub fn causal_conv_with_state(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let silu = match ctx.string("activation", "none").as_str() {
        "none" => false,
        "silu" | "swish" => true,
        other => return Err(ctx.unsupported(&format!("activation {other:?}"))),
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| causal_conv(silu, xs)))
}

fn causal_conv(silu: bool, xs: &[Option<&Tensor>]) -> candle_core::Result<Vec<Tensor>> {
    let opt = |i: usize| xs.get(i).copied().flatten();
    let x_in = input(xs, 0)?;
    let x = x_in.to_dtype(DType::F32)?;
    let w = input(xs, 1)?.to_dtype(DType::F32)?;
    let (b, c, _) = x.dims3()?;
    let Some(carry) = w.dim(2)?.checked_sub(1) else { candle_core::bail!("CausalConvWithState: empty kernel") };
    let past = match opt(3) {
        Some(p) => p.to_dtype(DType::F32)?,
        None => Tensor::zeros((b, c, carry), DType::F32, x.device())?,
    };
    let padded = if carry == 0 { x } else { Tensor::cat(&[&past, &x], 2)? };
    let mut y = super::conv::conv_nd(&padded, &w, &[(0, 0)], &[1], &[1], c)?;
    if let Some(bias) = opt(2) {
        y = y.broadcast_add(&bias.to_dtype(DType::F32)?.reshape((1, c, 1))?)?;
    }
    if silu {
        y = y.silu()?;
    }
    let present = padded.narrow(2, padded.dim(2)? - carry, carry)?;
    Ok(vec![y.to_dtype(x_in.dtype())?, present.to_dtype(x_in.dtype())?])
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

    #[test]
    fn rotary_rotates_half_split_and_interleaved_pairs() {
        // x = [1, 2, 3, 4], cos = [0, 1], sin = [1, 0]: the first pair turns a quarter, the
        // second stays. Half-split pairs are (1, 3), (2, 4); interleaved pairs (1, 2), (3, 4).
        let x = t(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
        let (cos, sin) = (t(&[1, 1, 2], &[0., 1.]), t(&[1, 1, 2], &[1., 0.]));
        let run = |interleaved| {
            let k = build(&node("RotaryEmbedding", 3, vec![int("interleaved", interleaved)]), 23);
            values(&k.run(&[Some(&x), Some(&cos), Some(&sin)]).unwrap()[0])
        };
        assert_close(&run(0), &[-3., 2., 1., 4.], 1e-6);
        assert_close(&run(1), &[-2., 1., 3., 4.], 1e-6);
    }

    #[test]
    fn microsoft_rotary_reads_a_position_offset() {
        // Positions start at 1: token 0 uses cache row 1 (a quarter turn), token 1 row 2 (a half).
        let mut n = node("RotaryEmbedding", 4, vec![int("num_heads", 1)]);
        n.domain = "com.microsoft".into();
        let k = build(&n, 1);
        let x = t(&[1, 2, 2], &[1., 2., 3., 4.]);
        let offset = candle_core::Tensor::new(&[1i64], &candle_core::Device::Cpu).unwrap();
        let (cos, sin) = (t(&[3, 1], &[1., 0., -1.]), t(&[3, 1], &[0., 1., 0.]));
        let y = k.run(&[Some(&x), Some(&offset), Some(&cos), Some(&sin)]).unwrap();
        assert_close(&values(&y[0]), &[-2., 1., -3., -4.], 1e-6);
    }

    #[test]
    fn gated_delta_linear_attention_matches_hand_recurrence() {
        // d_k = d_v = 1, past S = 2, k = 1, β = ½, decays e^0 then ½:
        // t1: S = 2, v' = ½(4 − 2) = 1, S = 3; t2: S = 1.5, v' = ½(6 − 1.5) = 2.25, S = 3.75.
        let n = node("LinearAttention", 6, vec![int("q_num_heads", 1), int("kv_num_heads", 1), float("scale", 1.0)]);
        let k = build(&n, 27);
        let ones = t(&[1, 2, 1], &[1., 1.]);
        let v = t(&[1, 2, 1], &[4., 6.]);
        let past = t(&[1, 1, 1, 1], &[2.]);
        let decay = t(&[1, 2, 1], &[0., 0.5f32.ln()]);
        let beta = t(&[1, 2, 1], &[0.5, 0.5]);
        let y = k.run(&[Some(&ones), Some(&ones), Some(&v), Some(&past), Some(&decay), Some(&beta)]).unwrap();
        assert_close(&values(&y[0]), &[3., 3.75], 1e-6);
        assert_close(&values(&y[1]), &[3.75], 1e-6);
    }

    #[test]
    fn linear_attention_query_heads_share_a_kv_state() {
        // One KV head, two query heads (q = 1 and 2) reading the state S = k·v = 3.
        let attrs = vec![int("q_num_heads", 2), int("kv_num_heads", 1), float("scale", 1.0), string("update_rule", "linear")];
        let k = build(&node("LinearAttention", 3, attrs), 27);
        let (q, kk, v) = (t(&[1, 1, 2], &[1., 2.]), t(&[1, 1, 1], &[1.]), t(&[1, 1, 1], &[3.]));
        let y = k.run(&[Some(&q), Some(&kk), Some(&v)]).unwrap();
        assert_close(&values(&y[0]), &[3., 6.], 1e-6);
    }

    #[test]
    fn causal_conv_continues_from_the_carried_state() {
        // padded = [5 | 1, 2, 3], kernel [1, 10]: y = [5 + 10, 1 + 20, 2 + 30]; the state keeps 3.
        let k = build(&node("CausalConvWithState", 4, vec![]), 27);
        let (x, w, past) = (t(&[1, 1, 3], &[1., 2., 3.]), t(&[1, 1, 2], &[1., 10.]), t(&[1, 1, 1], &[5.]));
        let y = k.run(&[Some(&x), Some(&w), None, Some(&past)]).unwrap();
        assert_close(&values(&y[0]), &[15., 21., 32.], 1e-6);
        assert_close(&values(&y[1]), &[3.], 1e-6);
    }

    #[test]
    fn causal_conv_with_bias_and_silu() {
        // Kernel size 1 carries no state; y = silu(2x − 1).
        let k = build(&node("CausalConvWithState", 3, vec![string("activation", "silu")]), 27);
        let (x, w, b) = (t(&[1, 1, 2], &[0.5, 1.]), t(&[1, 1, 1], &[2.]), t(&[1], &[-1.]));
        let y = k.run(&[Some(&x), Some(&w), Some(&b)]).unwrap();
        assert_close(&values(&y[0]), &[0., 1. / (1. + (-1f32).exp())], 1e-6);
        assert_eq!(y[1].dims(), &[1, 1, 0]);
    }
}
