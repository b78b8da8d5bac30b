//! Matrix products. Spec: MatMul (numpy matmul semantics, opsets 1–13), Gemm (opsets 1–13:
//! `Y = alpha·A'·B' + beta·C`, C broadcast to [M, N]), Einsum (12: explicit and implicit
//! output, repeated labels → diagonals, `...` broadcast), Det (11, batched).
//!
//! f32 MatMul and Gemm run on [`gemm::sgemm`] through the operands' strides (a transposed
//! input is never copied; batches sharing one right-hand matrix are one product; Gemm's constant
//! B is packed into sgemm's panels once, at load); other dtypes
//! on candle's matmul. Einsum is lowered at run time to diagonals (a mask and a sum), sums over labels nothing
//! later needs, and one batched matmul per pair of operands, folding left. Integer operands are
//! contracted in f64. Det factors each matrix on the host (LU with partial pivoting, in f64).

use std::collections::HashMap;

use candle_core::{bail, CpuStorage, DType, Device, Storage, Tensor};
use rayon::prelude::*;

use super::gemm::{self, Mat};
use super::{fast, input, Kernel, NodeCtx};
use crate::error::Result;

/// numpy matmul: 1-D operands are promoted to matrices and the added dim removed again;
/// batch dims broadcast.
pub fn matmul_tensors(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if let Some(y) = matmul_f32(a, b, None) {
        return y;
    }
    let (a1, b1) = (a.rank() == 1, b.rank() == 1);
    let a = if a1 { a.unsqueeze(0)? } else { a.clone() };
    let b = if b1 { b.unsqueeze(1)? } else { b.clone() };
    let mut y = if a.rank() == 2 && b.rank() == 2 {
        a.contiguous()?.matmul(&b.contiguous()?)?
    } else {
        a.contiguous()?.broadcast_matmul(&b.contiguous()?)?
    };
    if b1 {
        y = y.squeeze(y.rank() - 1)?;
    }
    if a1 {
        y = y.squeeze(y.rank() - if b1 { 1 } else { 2 })?;
    }
    Ok(y)
}

/// An f32 CPU tensor's storage, start offset, dims and strides.
fn strided<R>(t: &Tensor, f: impl FnOnce(&[f32], usize, &[usize]) -> R) -> Option<R> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Some(f(v, layout.start_offset(), layout.stride())),
        _ => None,
    }
}

/// numpy matmul of f32 tensors by [`gemm::sgemm`], reading both operands through their strides
/// (transposes and broadcasts are never copied), `bias` (one value per output column) added to
/// every row. When `b` is the same matrix for every batch and `a`'s batch and row dims
/// collapse into one stride, the batches run as one product. `None` for other dtypes.
pub fn matmul_f32(a: &Tensor, b: &Tensor, bias: Option<&[f32]>) -> Option<R<Tensor>> {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 || a.rank() == 0 || b.rank() == 0 {
        return None;
    }
    strided(a, |ad, a0, ast| strided(b, |bd, b0, bst| matmul_strided((ad, a0, a.dims(), ast), (bd, b0, b.dims(), bst), bias)))?
}

/// A strided operand: storage, start offset, dims, strides.
type Operand<'a> = (&'a [f32], usize, &'a [usize], &'a [usize]);

fn matmul_strided(a: Operand, b: Operand, bias: Option<&[f32]>) -> R<Tensor> {
    let (ad, a0, adims, ast) = a;
    let (bd, b0, bdims, bst) = b;
    // (rows, row stride, depth, depth stride) of A; a vector is one row.
    let (m, ars, k, acs) = match (adims, ast) {
        ([k], [cs]) => (1, 0, *k, *cs),
        ([.., m, k], [.., rs, cs]) => (*m, *rs, *k, *cs),
        _ => unreachable!("rank checked"),
    };
    let (kb, brs, n, bcs) = match (bdims, bst) {
        ([k], [rs]) => (*k, *rs, 1, 0),
        ([.., k, n], [.., rs, cs]) => (*k, *rs, *n, *cs),
        _ => unreachable!("rank checked"),
    };
    if k != kb {
        bail!("MatMul: inner dims differ, {adims:?} · {bdims:?}")
    }
    if bias.is_some_and(|b| b.len() != n) {
        bail!("MatMul: bias of {} values for {n} columns", bias.map_or(0, <[f32]>::len))
    }
    let (abatch, bbatch) = (&adims[..adims.len().saturating_sub(2)], &bdims[..bdims.len().saturating_sub(2)]);
    let rank = abatch.len().max(bbatch.len());
    let mut batch = vec![1; rank];
    let (mut astep, mut bstep) = (vec![0; rank], vec![0; rank]);
    for d in 0..rank {
        let pick = |dims: &[usize], st: &[usize]| {
            let off = rank - dims.len();
            (d >= off).then(|| (dims[d - off], st[d - off])).unwrap_or((1, 0))
        };
        let ((x, xs), (y, ys)) = (pick(abatch, ast), pick(bbatch, bst));
        if x != y && x != 1 && y != 1 {
            bail!("MatMul: batch dims {abatch:?} and {bbatch:?} do not broadcast")
        }
        batch[d] = x.max(y);
        astep[d] = if x == 1 { 0 } else { xs };
        bstep[d] = if y == 1 { 0 } else { ys };
    }
    let count: usize = batch.iter().product();
    let mut out_dims = batch.clone();
    if adims.len() > 1 {
        out_dims.push(m);
    }
    if bdims.len() > 1 {
        out_dims.push(n);
    }
    let mut c = vec![0f32; count * m * n];
    // One product for all batches: b the same for each, a's batch dims and rows one stride.
    let mut fold = bstep.iter().all(|&s| s == 0) && adims.len() > 1;
    let mut span = m;
    for d in (0..rank).rev() {
        fold &= batch[d] == 1 || astep[d] == ars * span;
        span *= batch[d];
    }
    let a_mat = |off: usize| Mat { data: &ad[a0 + off..], rs: ars, cs: acs };
    let b_mat = |off: usize| Mat { data: &bd[b0 + off..], rs: brs, cs: bcs };
    if fold || count == 1 {
        gemm::sgemm(count * m, n, k, a_mat(0), b_mat(0), bias, &mut c, n);
    } else {
        // Batch `t`'s offsets into A and B: its index in `batch`, digit by digit.
        let offsets = |mut t: usize| {
            let (mut aoff, mut boff) = (0, 0);
            for d in (0..rank).rev() {
                let i = t % batch[d];
                t /= batch[d];
                (aoff, boff) = (aoff + i * astep[d], boff + i * bstep[d]);
            }
            (aoff, boff)
        };
        let product = |(t, chunk): (usize, &mut [f32])| {
            let (aoff, boff) = offsets(t);
            gemm::sgemm(m, n, k, a_mat(aoff), b_mat(boff), bias, chunk, n);
        };
        let size = (m * n).max(1);
        // Attention's products (one per head) are each too small to cut: share them out whole.
        if gemm::worth_sharing(count * m * n * k) {
            c.par_chunks_exact_mut(size).enumerate().for_each(product);
        } else {
            c.chunks_exact_mut(size).enumerate().for_each(product);
        }
    }
    Tensor::from_vec(c, out_dims, &Device::Cpu)
}

pub fn matmul(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| Ok(vec![matmul_tensors(input(xs, 0)?, input(xs, 1)?)?])))
}

pub fn gemm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.0) as f64;
    let beta = ctx.float("beta", 1.0) as f64;
    let trans_a = ctx.int("transA", 0) != 0;
    let trans_b = ctx.int("transB", 0) != 0;
    // A constant f32 B (a layer's weight) is packed into sgemm's panels once, here.
    let packed = ctx.constant_input(1).and_then(|b| {
        let b = if trans_b { b.t().ok()? } else { b.clone() };
        let (k, n) = b.dims2().ok()?;
        let panels = strided(&b, |bd, b0, bst| gemm::Packed::new(k, n, Mat { data: &bd[b0..], rs: bst[0], cs: bst[1] }))??;
        Some((b.id(), panels))
    });
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let a = input(xs, 0)?;
        let b = input(xs, 1)?;
        let a = if trans_a { a.t()? } else { a.clone() };
        if let (Some((id, panels)), 1.0, 1.0) = (&packed, alpha, beta) {
            if b.id() == *id {
                if let Some(y) = gemm_packed(&a, panels, xs.get(2).copied().flatten()) {
                    return Ok(vec![y?]);
                }
            }
        }
        let b = if trans_b { b.t()? } else { b.clone() };
        let c = xs.get(2).copied().flatten();
        // f32 with a bias along the columns: the product starts from it (transposes are read
        // in place either way).
        let n = b.dims().last().copied().unwrap_or(0);
        if let (Some(c), 1.0, 1.0) = (c, alpha, beta) {
            if c.elem_count() == n && c.dims().last() == Some(&n) && c.rank() <= 2 {
                if let Some(y) = fast::with_f32(c, |bias| matmul_f32(&a, &b, Some(bias))).flatten() {
                    return Ok(vec![y?]);
                }
            }
        }
        let mut y = match matmul_f32(&a, &b, None) {
            Some(y) => y?,
            None => a.contiguous()?.matmul(&b.contiguous()?)?,
        };
        if alpha != 1.0 {
            y = y.affine(alpha, 0.0)?;
        }
        if let Some(c) = c {
            let c = if beta != 1.0 { c.affine(beta, 0.0)? } else { c.clone() };
            y = y.broadcast_add(&c)?;
        }
        Ok(vec![y])
    }))
}

/// `a [m, k] · B + c` with B packed at load; `c` one value per column or absent. `None` when
/// the operands do not fit this path (then the general one runs).
fn gemm_packed(a: &Tensor, b: &gemm::Packed, c: Option<&Tensor>) -> Option<R<Tensor>> {
    let (k, n) = b.dims();
    let (m, ka) = a.dims2().ok()?;
    if ka != k {
        return None;
    }
    let run = |bias: Option<&[f32]>| {
        strided(a, |ad, a0, ast| {
            let mut y = vec![0f32; m * n];
            let bias = bias.map_or(gemm::Bias::None, gemm::Bias::Cols);
            gemm::sgemm_packed(m, n, k, Mat { data: &ad[a0..], rs: ast[0], cs: ast[1] }, b, bias, gemm::Act::None, &mut y, n);
            Tensor::from_vec(y, (m, n), &Device::Cpu)
        })
    };
    match c {
        None => run(None),
        Some(c) if c.elem_count() == n && c.dims().last() == Some(&n) && c.rank() <= 2 => fast::with_f32(c, |bias| run(Some(bias))).flatten(),
        Some(_) => None,
    }
}

/// One Einsum label: a letter, or the `i`-th dim covered by `...` (counted over the widest
/// ellipsis, right-aligned), kept apart from letters.
type Label = char;

/// An operand with one label per dim.
type Labelled = (Tensor, Vec<Label>);

type R<T> = candle_core::Result<T>;

fn ellipsis_label(i: usize) -> Label {
    char::from_u32(0x2460 + i as u32).expect("a valid char")
}

/// A parsed equation: each operand's terms as written, and the output term if explicit.
struct Equation {
    inputs: Vec<String>,
    output: Option<String>,
}

fn parse_equation(eq: &str) -> Equation {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq, None),
    };
    Equation { inputs: lhs.split(',').map(str::to_string).collect(), output: rhs }
}

/// A term's labels, its `...` standing for the last `span` of the `width` ellipsis labels.
fn term_labels(term: &str, span: usize, width: usize) -> Vec<Label> {
    let (head, tail) = term.split_once("...").unwrap_or((term, ""));
    let mut labels: Vec<Label> = head.chars().collect();
    if term.contains("...") {
        labels.extend((width - span..width).map(ellipsis_label));
    }
    labels.extend(tail.chars());
    labels
}

/// Sum `x` over the labels `keep` rejects.
fn sum_out(x: Tensor, labels: Vec<Label>, keep: impl Fn(Label) -> bool) -> R<Labelled> {
    let gone: Vec<usize> = (0..labels.len()).filter(|&d| !keep(labels[d])).collect();
    if gone.is_empty() {
        return Ok((x, labels));
    }
    let kept = labels.into_iter().filter(|&l| keep(l)).collect();
    Ok((x.sum(gone)?, kept))
}

/// `x` with every repeated label reduced to its diagonal.
fn diagonals(mut x: Tensor, mut labels: Vec<Label>) -> R<Labelled> {
    let repeat = |ls: &[Label]| (0..ls.len()).find_map(|q| ls[..q].iter().position(|&l| l == ls[q]).map(|p| (p, q)));
    while let Some((p, q)) = repeat(&labels) {
        let n = x.dims()[p];
        if x.dims()[q] != n {
            candle_core::bail!("Einsum label '{}' has sizes {n} and {}", labels[q], x.dims()[q])
        }
        let along = |d: usize| -> R<Tensor> {
            let mut dims = vec![1; labels.len()];
            dims[d] = n;
            Tensor::arange(0u32, n as u32, x.device())?.reshape(dims)
        };
        let mask = along(p)?.broadcast_eq(&along(q)?)?.to_dtype(x.dtype())?;
        x = x.broadcast_mul(&mask)?.sum(q)?;
        labels.remove(q);
    }
    Ok((x, labels))
}

/// `x` with its dims reordered to `order` (each a label of `labels`) and broadcast to `sizes`.
fn arrange(x: &Tensor, labels: &[Label], order: &[Label], sizes: &HashMap<Label, usize>) -> R<Tensor> {
    let perm: Vec<usize> = order.iter().map(|l| labels.iter().position(|m| m == l).expect("label present")).collect();
    let dims: Vec<usize> = order.iter().map(|l| sizes[l]).collect();
    x.permute(perm)?.broadcast_as(dims)?.contiguous()
}

/// Contract two labelled operands, keeping the labels in `keep` (needed later): shared kept
/// labels batch, shared others are summed by one batched matmul.
fn contract_pair(a: Labelled, b: Labelled, keep: &[Label]) -> R<Labelled> {
    let (la0, lb0) = (a.1.clone(), b.1.clone());
    let (a, la) = sum_out(a.0, a.1, |l| keep.contains(&l) || lb0.contains(&l))?;
    let (b, lb) = sum_out(b.0, b.1, |l| keep.contains(&l) || la0.contains(&l))?;
    let mut sizes: HashMap<Label, usize> = HashMap::new();
    for (l, n) in la.iter().zip(a.dims()).chain(lb.iter().zip(b.dims())) {
        let s = sizes.entry(*l).or_insert(*n);
        *s = (*s).max(*n);
    }
    let batch: Vec<Label> = la.iter().copied().filter(|l| lb.contains(l) && keep.contains(l)).collect();
    let sum: Vec<Label> = la.iter().copied().filter(|l| lb.contains(l) && !keep.contains(l)).collect();
    let a_only: Vec<Label> = la.iter().copied().filter(|l| !lb.contains(l)).collect();
    let b_only: Vec<Label> = lb.iter().copied().filter(|l| !la.contains(l)).collect();
    let size = |ls: &[Label]| ls.iter().map(|l| sizes[l]).product::<usize>();
    let (nb, m, k, n) = (size(&batch), size(&a_only), size(&sum), size(&b_only));
    let a_order = [batch.clone(), a_only.clone(), sum.clone()].concat();
    let a = arrange(&a, &la, &a_order, &sizes)?.reshape((nb, m, k))?;
    let b = arrange(&b, &lb, &[batch.clone(), sum, b_only.clone()].concat(), &sizes)?.reshape((nb, k, n))?;
    let labels = [batch, a_only, b_only].concat();
    let dims: Vec<usize> = labels.iter().map(|l| sizes[l]).collect();
    Ok((a.matmul(&b)?.reshape(dims)?, labels))
}

fn einsum_tensors(eq: &Equation, xs: &[&Tensor]) -> R<Tensor> {
    if eq.inputs.len() != xs.len() {
        candle_core::bail!("Einsum equation has {} operands, got {}", eq.inputs.len(), xs.len())
    }
    let letters = |t: &str| t.replace("...", "").chars().count();
    let spans: Vec<usize> = eq.inputs.iter().zip(xs).map(|(t, x)| x.rank().saturating_sub(letters(t))).collect();
    let width = spans.iter().copied().max().unwrap_or(0);
    let mut ops = Vec::with_capacity(xs.len());
    for ((term, x), &span) in eq.inputs.iter().zip(xs).zip(&spans) {
        let labels = term_labels(term, span, width);
        if labels.len() != x.rank() {
            candle_core::bail!("Einsum term '{term}' does not fit an input of rank {}", x.rank())
        }
        ops.push(diagonals((*x).clone(), labels)?);
    }
    let out: Vec<Label> = match &eq.output {
        Some(t) => term_labels(t, width, width),
        None => {
            let all: Vec<Label> = eq.inputs.iter().flat_map(|t| t.chars().filter(|c| *c != '.')).collect();
            let mut once: Vec<Label> =
                all.iter().copied().filter(|l| all.iter().filter(|m| *m == l).count() == 1).collect();
            once.sort_unstable();
            (0..width).map(ellipsis_label).chain(once).collect()
        }
    };
    let mut ops = ops.into_iter();
    let mut acc = ops.next().ok_or_else(|| candle_core::Error::Msg("Einsum needs an operand".into()))?;
    let rest: Vec<_> = ops.collect();
    for (i, next) in rest.iter().enumerate() {
        let mut keep = out.clone();
        keep.extend(rest[i + 1..].iter().flat_map(|(_, l)| l.iter().copied()));
        acc = contract_pair(acc, next.clone(), &keep)?;
    }
    let (y, labels) = sum_out(acc.0, acc.1, |l| out.contains(&l))?;
    let perm: Vec<usize> = out.iter().map(|l| labels.iter().position(|m| m == l)).collect::<Option<_>>()
        .ok_or_else(|| candle_core::Error::Msg("Einsum output label not in any input".into()))?;
    if perm.iter().enumerate().all(|(i, &p)| i == p) { Ok(y) } else { y.permute(perm) }
}

pub fn einsum(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let eq = parse_equation(&ctx.string("equation", ""));
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let xs: Vec<&Tensor> = (0..xs.len()).map(|i| input(xs, i)).collect::<R<_>>()?;
        let dtype = xs.first().map_or(DType::F32, |x| x.dtype());
        if dtype.is_float() {
            return Ok(vec![einsum_tensors(&eq, &xs)?]);
        }
        let wide: Vec<Tensor> = xs.iter().map(|x| x.to_dtype(DType::F64)).collect::<R<_>>()?;
        Ok(vec![einsum_tensors(&eq, &wide.iter().collect::<Vec<_>>())?.to_dtype(dtype)?])
    }))
}

/// The determinant of one row-major `n`×`n` matrix, by LU with partial pivoting.
fn determinant(mut a: Vec<f64>, n: usize) -> f64 {
    let mut det = 1.0;
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs())).unwrap_or(c);
        if a[p * n + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            (0..n).for_each(|j| a.swap(p * n + j, c * n + j));
            det = -det;
        }
        let pivot = a[c * n + c];
        det *= pivot;
        for r in c + 1..n {
            let f = a[r * n + c] / pivot;
            (c..n).for_each(|j| a[r * n + j] -= f * a[c * n + j]);
        }
    }
    det
}

pub fn det(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let (batch, n) = match x.dims() {
            [b @ .., m, n] if m == n => (b.to_vec(), *n),
            d => candle_core::bail!("Det needs square matrices, got {d:?}"),
        };
        let v = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let dets: Vec<f64> = match n {
            0 => vec![1.0; batch.iter().product()],
            _ => v.chunks(n * n).map(|m| determinant(m.to_vec(), n)).collect(),
        };
        Ok(vec![Tensor::from_vec(dets, batch, x.device())?.to_dtype(x.dtype())?])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;

    #[test]
    fn gemm_with_trans_b_alpha_beta_and_bias() {
        let mut n = node("Gemm", 3, vec![int("transB", 1)]);
        n.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "alpha".into(), f: 2.0, r#type: 1, ..Default::default()
        });
        let k = build(&n, 13);
        let a = t(&[1, 2], &[1., 2.]);
        let b = t(&[3, 2], &[1., 0., 0., 1., 1., 1.]); // B' = [[1,0,1],[0,1,1]]
        let c = t(&[3], &[0.5, 0.5, 0.5]);
        let y = k.run(&[Some(&a), Some(&b), Some(&c)]).unwrap();
        // A·B' = [1, 2, 3]; ·2 = [2, 4, 6]; + 0.5
        assert_close(&values(&y[0]), &[2.5, 4.5, 6.5], 1e-6);
    }

    #[test]
    fn gemm_with_a_constant_weight_packs_it_once_and_matches() {
        use std::collections::HashMap;
        // fc-layer shapes: ragged panels (n = 13), K over one block (300), transB.
        let (m, k, n) = (5, 300, 13);
        let a = t(&[m, k], &(0..m * k).map(|v| ((v * 37) % 23) as f32 / 11.0 - 1.0).collect::<Vec<_>>());
        let w = t(&[n, k], &(0..n * k).map(|v| ((v * 11) % 7) as f32 / 3.0 - 1.0).collect::<Vec<_>>());
        let b = t(&[n], &(0..n).map(|v| v as f32 * 0.25).collect::<Vec<_>>());
        let want = a.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
        let n_ = node("Gemm", 3, vec![int("transB", 1)]);
        let constants = HashMap::from([("x1".to_string(), w.clone())]);
        let opsets = HashMap::from([(String::new(), 13)]);
        let ctx = super::NodeCtx { node: &n_, opset: 13, opsets: &opsets, constants: &constants, types: &HashMap::new() };
        let kernel = super::gemm(&ctx).unwrap();
        for bias in [Some(&b), None] {
            let y = kernel.run(&[Some(&a), Some(&w), bias]).unwrap().remove(0);
            let want = if bias.is_some() { want.clone() } else { a.matmul(&w.t().unwrap()).unwrap() };
            assert_close(&values(&y), &values(&want), 1e-4);
        }
        // Another tensor in the weight's place (not the constant): the general path.
        let w2 = (&w * 2.0).unwrap();
        let y = kernel.run(&[Some(&a), Some(&w2), Some(&b)]).unwrap().remove(0);
        let want = a.matmul(&w2.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
        assert_close(&values(&y), &values(&want), 1e-4);
    }

    #[test]
    fn matmul_promotes_vectors_like_numpy() {
        let k = build(&node("MatMul", 2, vec![]), 13);
        let v = t(&[2], &[1., 2.]);
        let m = t(&[2, 2], &[1., 2., 3., 4.]);
        let y = k.run(&[Some(&v), Some(&m)]).unwrap();
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[7., 10.], 0.0);
        let y = k.run(&[Some(&m), Some(&v)]).unwrap();
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[5., 11.], 0.0);
    }

    fn einsum(eq: &str, xs: &[&candle_core::Tensor]) -> candle_core::Tensor {
        let k = build(&node("Einsum", xs.len(), vec![string("equation", eq)]), 12);
        k.run(&xs.iter().map(|&x| Some(x)).collect::<Vec<_>>()).unwrap().remove(0)
    }

    #[test]
    fn einsum_transpose_sum_trace_and_implicit_output() {
        let m = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = einsum("ij->ji", &[&m]);
        assert_eq!(y.dims(), &[3, 2]);
        assert_close(&values(&y), &[1., 4., 2., 5., 3., 6.], 0.);
        assert_close(&values(&einsum("ij -> i", &[&m])), &[6., 15.], 0.);
        // Implicit: labels seen once, sorted, so "ji" is the transpose of "ij".
        assert_eq!(einsum("ji", &[&m]).dims(), &[3, 2]);
        let sq = t(&[2, 2], &[1., 2., 3., 4.]);
        assert_close(&values(&einsum("ii", &[&sq])), &[5.], 0.);
        assert_close(&values(&einsum("...ii->...i", &[&sq.unsqueeze(0).unwrap()])), &[1., 4.], 0.);
    }

    #[test]
    fn einsum_contractions_by_matmul() {
        let a = t(&[2, 2], &[1., 2., 3., 4.]);
        let b = t(&[2, 2], &[5., 6., 7., 8.]);
        assert_close(&values(&einsum("ij,jk", &[&a, &b])), &[19., 22., 43., 50.], 0.);
        assert_close(&values(&einsum("i,i", &[&t(&[2], &[1., 2.]), &t(&[2], &[3., 4.])])), &[11.], 0.);
        // Outer product with a broadcast ellipsis batch, and three operands.
        let y = einsum("...i,...j->...ij", &[&t(&[2, 1], &[1., 2.]), &t(&[1, 2], &[3., 4.])]);
        assert_eq!(y.dims(), &[2, 1, 2]);
        assert_close(&values(&y), &[3., 4., 6., 8.], 0.);
        assert_close(&values(&einsum("ij,jk,k->i", &[&a, &b, &t(&[2], &[1., 1.])])), &[41., 93.], 0.);
    }

    #[test]
    fn det_of_a_batch() {
        let k = build(&node("Det", 1, vec![]), 11);
        let x = t(&[2, 2, 2], &[1., 2., 3., 4., 0., 1., 1., 0.]);
        let y = k.run(&[Some(&x)]).unwrap();
        assert_eq!(y[0].dims(), &[2]);
        assert_close(&values(&y[0]), &[-2., -1.], 1e-6);
        let x = t(&[3, 3], &[2., 0., 1., 1., 3., 2., 1., 1., 2.]); // 2·(6−2) + 1·(1−3)
        assert_close(&values(&k.run(&[Some(&x)]).unwrap()[0]), &[6.], 1e-6);
    }
}
