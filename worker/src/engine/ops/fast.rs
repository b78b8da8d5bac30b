//! Fast paths for f32 tensors on the CPU: elementwise maps and broadcasting zips computed in one
//! pass over contiguous memory, straight into the output's buffer — loops the compiler turns
//! into wasm simd128 / native SIMD. candle's generic paths allocate per primitive (a sigmoid is
//! four passes) and walk strided indices for broadcasts; these run where the layout allows and
//! return `None` otherwise, and the op falls back to candle.

use candle_core::{CpuStorage, DType, Device, Layout, Shape, Storage, Tensor};

use super::simd::{self, V4};

type CResult<T> = candle_core::Result<T>;

/// `f` on the values of `t` if it is a contiguous f32 CPU tensor.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let (storage, layout): (_, &Layout) = t.storage_and_layout();
    let (start, end) = layout.contiguous_offsets()?;
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Some(f(&v[start..end])),
        _ => None,
    }
}

fn tensor(v: Vec<f32>, shape: impl Into<Shape>) -> CResult<Tensor> {
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// `f` on every element of an f32 tensor, in one pass.
pub fn map(x: &Tensor, f: impl Fn(f32) -> f32) -> Option<CResult<Tensor>> {
    let v = with_f32(x, |s| s.iter().map(|&v| f(v)).collect::<Vec<f32>>())?;
    Some(tensor(v, x.shape().clone()))
}

/// `f` on four elements at a time of an f32 tensor (the [`simd`](super::simd) math), in one
/// pass.
pub fn map_v(x: &Tensor, f: impl Fn(V4) -> V4) -> Option<CResult<Tensor>> {
    let v = with_f32(x, |s| {
        let mut out = vec![0f32; s.len()];
        simd::map(s, &mut out, f);
        out
    })?;
    Some(tensor(v, x.shape().clone()))
}

/// How a broadcast operand repeats over the output: its `n` values, each held for `inner`
/// consecutive output elements, the whole cycling. Covers scalars (`n` = 1), trailing vectors
/// (`inner` = 1) and per-channel parameters ([1, C, 1, 1]: `inner` = H·W).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Repeat {
    n: usize,
    inner: usize,
}

/// The repeat pattern of `small` broadcast to `out`, if its non-1 dims are one contiguous run
/// of `out`'s dims.
fn repeat(small: &[usize], out: &[usize]) -> Option<Repeat> {
    if small.len() > out.len() {
        return None;
    }
    let pad = out.len() - small.len();
    let dim = |i: usize| if i < pad { 1 } else { small[i - pad] };
    let kept: Vec<usize> = (0..out.len()).filter(|&i| dim(i) != 1).collect();
    let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else {
        return Some(Repeat { n: 1, inner: out.iter().product() });
    };
    if (first..=last).any(|i| dim(i) != out[i]) {
        return None;
    }
    Some(Repeat { n: out[first..=last].iter().product(), inner: out[last + 1..].iter().product() })
}

/// `f(a, b)` with numpy broadcasting where one side has the output's shape and the other
/// repeats (see [`Repeat`]); both f32, contiguous.
pub fn zip(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Option<CResult<Tensor>> {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 {
        return None;
    }
    let out = a.shape().broadcast_shape_binary_op(b.shape(), "zip").ok()?;
    let out_dims = out.dims().to_vec();
    let v = if a.dims() == out_dims.as_slice() {
        let r = repeat(b.dims(), &out_dims)?;
        with_f32(a, |x| with_f32(b, |y| zip_repeat(x, y, r, &f)))??
    } else if b.dims() == out_dims.as_slice() {
        let r = repeat(a.dims(), &out_dims)?;
        with_f32(b, |y| with_f32(a, |x| zip_repeat(y, x, r, &|p, q| f(q, p))))??
    } else {
        return None;
    };
    Some(tensor(v, out))
}

fn zip_repeat(full: &[f32], small: &[f32], r: Repeat, f: &impl Fn(f32, f32) -> f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(full.len());
    if small.len() == full.len() {
        out.extend(full.iter().zip(small).map(|(&x, &y)| f(x, y)));
    } else if r.n == 1 {
        let y = small[0];
        out.extend(full.iter().map(|&x| f(x, y)));
    } else {
        for (block, chunk) in full.chunks(r.inner.max(1)).enumerate() {
            let y = small[block % r.n];
            out.extend(chunk.iter().map(|&x| f(x, y)));
        }
    }
    out
}

/// `x[n, c, …] * scale[c] + shift[c]` for an f32 tensor of rank ≥ 2 (a batch normalisation
/// with its statistics folded into `scale` and `shift`), in one pass.
pub fn channel_affine(x: &Tensor, scale: &[f32], shift: &[f32]) -> Option<CResult<Tensor>> {
    let dims = x.dims();
    if dims.len() < 2 || dims[1] != scale.len() || scale.len() != shift.len() {
        return None;
    }
    let inner: usize = dims[2..].iter().product();
    let c = scale.len();
    let v = with_f32(x, |xs| {
        let mut out = Vec::with_capacity(xs.len());
        for (plane, chunk) in xs.chunks(inner.max(1)).enumerate() {
            let (a, b) = (scale[plane % c], shift[plane % c]);
            out.extend(chunk.iter().map(|&v| v * a + b));
        }
        out
    })?;
    Some(tensor(v, x.shape().clone()))
}

/// erf(x) to within 1.2e-7 (Numerical Recipes' erfc Chebyshev fit, in f64 then rounded): the
/// reference the vector [`simd::erf`] is tested against.
#[cfg(test)]
pub fn erf(x: f32) -> f32 {
    let z = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    (if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dims: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn repeats_cover_scalars_trailing_and_per_channel() {
        assert_eq!(repeat(&[], &[2, 3]), Some(Repeat { n: 1, inner: 6 }));
        assert_eq!(repeat(&[3], &[2, 3]), Some(Repeat { n: 3, inner: 1 }));
        assert_eq!(repeat(&[1, 4, 1, 1], &[2, 4, 5, 5]), Some(Repeat { n: 4, inner: 25 }));
        assert_eq!(repeat(&[4, 1, 5], &[2, 4, 3, 5]), None); // two runs: candle's path
    }

    #[test]
    fn zips_match_candles_broadcasts() {
        let a = t(&[2, 3, 2], &(0..12).map(|i| i as f32).collect::<Vec<_>>());
        for b in [t(&[], &[2.0]), t(&[2], &[1.0, -1.0]), t(&[3, 1], &[1.0, 2.0, 3.0]), a.clone()] {
            let want = a.broadcast_mul(&b).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = zip(&a, &b, |x, y| x * y).unwrap().unwrap();
            assert_eq!(got.dims(), a.dims());
            assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want, "{:?}", b.dims());
            let flipped = zip(&b, &a, |x, y| x - y).unwrap().unwrap();
            let want = b.broadcast_sub(&a).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flipped.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
        }
    }

    #[test]
    fn erf_is_accurate() {
        // Values of erf from the standard tables.
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.5, 0.999_999_3)] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {} not {want}", erf(x));
        }
    }
}
