//! Selection on the host. Spec: TopK (opset 1 `k` attribute; 10+ `K` input; 11+ `largest`,
//! `sorted`), NonMaxSuppression (opsets 10, 11: `center_point_box`, max boxes per class, IoU and
//! score thresholds). Ties keep the lower index first, as the ONNX reference does.

use std::cmp::Ordering;

use candle_core::{DType, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::error::Result;

/// Indices of `v` ordered by value (descending when `largest`), lower index first on ties.
fn ranked(v: &[f64], largest: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| {
        let o = v[a].partial_cmp(&v[b]).unwrap_or(Ordering::Equal);
        (if largest { o.reverse() } else { o }).then(a.cmp(&b))
    });
    idx
}

fn top_k_kernel(k_attr: Option<i64>, ax: i64, largest: bool) -> Box<dyn Kernel> {
    Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let k = match k_attr {
            Some(k) => k,
            None => *int_values(input(xs, 1)?)?.first().ok_or_else(|| candle_core::Error::Msg("TopK: empty K".into()))?,
        };
        let a = axis(ax, x.rank())?;
        let len = x.dim(a)?;
        if k < 0 || k as usize > len {
            candle_core::bail!("TopK: k {k} out of range for axis of {len}")
        }
        let k = k as usize;
        // Move the axis last, rank each row, and gather the chosen indices.
        let xt = x.transpose(a, x.rank() - 1)?.contiguous()?;
        let rows = xt.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let idx: Vec<i64> = if len == 0 {
            vec![]
        } else {
            rows.chunks(len).flat_map(|r| ranked(r, largest).into_iter().take(k).map(|i| i as i64)).collect()
        };
        let mut shape = xt.dims().to_vec();
        *shape.last_mut().unwrap_or(&mut 0) = k;
        let idx = Tensor::from_vec(idx, shape, x.device())?;
        let values = xt.gather(&idx, xt.rank() - 1)?.transpose(a, x.rank() - 1)?.contiguous()?;
        Ok(vec![values, idx.transpose(a, x.rank() - 1)?.contiguous()?])
    })
}

pub fn top_k_1(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(top_k_kernel(Some(ctx.int("k", 0)), ctx.int("axis", -1), true))
}

pub fn top_k(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(top_k_kernel(None, ctx.int("axis", -1), ctx.int("largest", 1) != 0))
}

/// A box as (x_min, y_min, x_max, y_max).
fn corners(b: &[f64], center: bool) -> [f64; 4] {
    if center {
        [b[0] - b[2] / 2.0, b[1] - b[3] / 2.0, b[0] + b[2] / 2.0, b[1] + b[3] / 2.0]
    } else {
        // [y1, x1, y2, x2], corners in either order.
        [b[1].min(b[3]), b[0].min(b[2]), b[1].max(b[3]), b[0].max(b[2])]
    }
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = a[2].min(b[2]) - a[0].max(b[0]);
    let h = a[3].min(b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let area = |c: &[f64; 4]| (c[2] - c[0]) * (c[3] - c[1]);
    let union = area(a) + area(b) - inter;
    if area(a) <= 0.0 || area(b) <= 0.0 || union <= 0.0 { 0.0 } else { inter / union }
}

pub fn non_max_suppression(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let center = ctx.int("center_point_box", 0) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (boxes, scores) = (input(xs, 0)?, input(xs, 1)?);
        let scalar = |i: usize| -> candle_core::Result<Option<f64>> {
            match xs.get(i).copied().flatten().filter(|t| t.elem_count() > 0) {
                Some(t) => Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?.first().copied()),
                None => Ok(None),
            }
        };
        let max_out = scalar(2)?.unwrap_or(0.0).max(0.0) as usize;
        let iou_threshold = scalar(3)?.unwrap_or(0.0);
        let score_threshold = scalar(4)?;
        let (nb, ns) = (boxes.dim(0)?, boxes.dim(1)?);
        let nc = scores.dim(1)?;
        if boxes.dims() != [nb, ns, 4] || scores.dims() != [nb, nc, ns] {
            candle_core::bail!("NonMaxSuppression: boxes {:?} and scores {:?} disagree", boxes.dims(), scores.dims())
        }
        let bv = boxes.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let sv = scores.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let mut selected: Vec<i64> = Vec::new();
        for b in 0..nb {
            let cs: Vec<[f64; 4]> = (0..ns).map(|i| corners(&bv[(b * ns + i) * 4..(b * ns + i + 1) * 4], center)).collect();
            for c in 0..nc {
                let s = &sv[(b * nc + c) * ns..(b * nc + c + 1) * ns];
                let mut kept: Vec<usize> = Vec::new();
                for i in ranked(s, true) {
                    if kept.len() >= max_out {
                        break;
                    }
                    if score_threshold.is_some_and(|t| s[i] <= t) {
                        continue;
                    }
                    if kept.iter().all(|&j| iou(&cs[i], &cs[j]) <= iou_threshold) {
                        kept.push(i);
                        selected.extend([b as i64, c as i64, i as i64]);
                    }
                }
            }
        }
        let n = selected.len() / 3;
        Ok(vec![Tensor::from_vec(selected, (n, 3), boxes.device())?])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn top_k_smallest_keeps_lower_index_on_ties() {
        let x = t(&[2, 3], &[3., 1., 1., 5., 6., 4.]);
        let k = Tensor::new(&[2i64], &Device::Cpu).unwrap();
        let y = build(&node("TopK", 2, vec![int("largest", 0)]), 11).run(&[Some(&x), Some(&k)]).unwrap();
        assert_close(&values(&y[0]), &[1., 1., 4., 5.], 0.0);
        assert_eq!(y[1].flatten_all().unwrap().to_vec1::<i64>().unwrap(), vec![1, 2, 2, 0]);
    }

    #[test]
    fn nms_suppresses_overlaps_per_class() {
        // Boxes 0 and 1 overlap with IoU 0.81/1.19 ≈ 0.68; box 2 is apart.
        let boxes = t(&[1, 3, 4], &[0., 0., 1., 1., 0., 0.1, 1., 1.1, 0., 5., 1., 6.]);
        let scores = t(&[1, 1, 3], &[0.9, 0.95, 0.3]);
        let max = Tensor::new(&[10i64], &Device::Cpu).unwrap();
        let iou = t(&[1], &[0.5]);
        let y = build(&node("NonMaxSuppression", 4, vec![]), 11).run(&[Some(&boxes), Some(&scores), Some(&max), Some(&iou)]).unwrap();
        assert_eq!(y[0].flatten_all().unwrap().to_vec1::<i64>().unwrap(), vec![0, 0, 1, 0, 0, 2]);
    }
}
