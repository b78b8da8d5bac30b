//! Signal processing on the host. Spec: https://onnx.ai/onnx/operators/, covering
//! - DFT: opset 17 (`axis` attribute, default 1) and 20 (`axis` as the optional third input,
//!   default -2); `inverse`, `onesided` (forward: the first n/2+1 bins; inverse: a one-sided
//!   spectrum in, a real signal out, as numpy's irfft), the optional `dft_length` input (the
//!   signal is zero-padded or truncated to it). Signals are `[..., 1]` (real) or `[..., 2]`
//!   (complex), outputs `[..., 2]` (irfft: `[..., 1]`).
//! - STFT (17): frames of `frame_step`, weighted by the optional window, each a DFT of
//!   `frame_length`; `onesided` (default 1).
//! - HannWindow, HammingWindow, BlackmanWindow (17): `periodic`, `output_datatype`.
//! - MelWeightMatrix (17): triangular filters on the mel scale, `output_datatype`.
//!
//! The transform is a plain O(n²) DFT in f64 with an exact twiddle table; [`dft_along`] is the
//! entry point other code (an audio front end) can reuse.

use std::f64::consts::PI;

use candle_core::{bail, DType, Device, Result as CResult, Tensor};

use super::{axis, input, int_values, Kernel, NodeCtx};
use crate::engine::tensor::dtype_of_onnx;
use crate::error::Result;

/// The DFT of `x` (zero-padded or truncated to `n`), `inverse` scaled by 1/n.
fn dft(x: &[(f64, f64)], n: usize, inverse: bool) -> Vec<(f64, f64)> {
    let sign = if inverse { 1.0 } else { -1.0 };
    let twiddle: Vec<(f64, f64)> =
        (0..n).map(|k| 2.0 * PI * k as f64 / n as f64).map(|w| (w.cos(), sign * w.sin())).collect();
    let scale = if inverse { 1.0 / n as f64 } else { 1.0 };
    (0..n)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (j, &(a, b)) in x.iter().take(n).enumerate() {
                let (c, s) = twiddle[(j * k) % n];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            (re * scale, im * scale)
        })
        .collect()
}

/// A one-sided spectrum extended to all `n` bins by Hermitian symmetry (numpy's irfft input).
fn hermitian(x: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    let half: Vec<(f64, f64)> = (0..=n / 2).map(|k| x.get(k).copied().unwrap_or((0.0, 0.0))).collect();
    (0..n).map(|k| if k <= n / 2 { half[k] } else { (half[n - k].0, -half[n - k].1) }).collect()
}

/// What a DFT along one axis computes.
#[derive(Clone, Copy, Debug)]
pub struct DftSpec {
    /// The transform length; `None`: the axis length (irfft: 2 * (len - 1)).
    pub n: Option<usize>,
    pub inverse: bool,
    pub onesided: bool,
}

/// The DFT of `x` (`[..., 1]` real or `[..., 2]` complex) along `axis` (resolved against x's
/// rank, which counts the trailing dim; it must not be that dim). The output has x's dtype.
pub fn dft_along(x: &Tensor, axis: usize, spec: DftSpec) -> CResult<Tensor> {
    let dims = x.dims();
    let r = dims.len();
    let c = *dims.last().unwrap_or(&0);
    if r < 2 || !(c == 1 || c == 2) || axis >= r - 1 {
        bail!("DFT: expected [..., 1|2] with the axis before the last, got {dims:?} and axis {axis}")
    }
    let len = dims[axis];
    let irfft = spec.inverse && spec.onesided;
    let n = spec.n.unwrap_or(if irfft { 2 * len.saturating_sub(1) } else { len });
    if n == 0 {
        bail!("DFT: the transform length is 0")
    }
    let (outer, inner) = (dims[..axis].iter().product::<usize>(), dims[axis + 1..r - 1].iter().product::<usize>());
    let m = if spec.onesided && !spec.inverse { n / 2 + 1 } else { n };
    let c_out = if irfft { 1 } else { 2 };
    let v = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let mut out = vec![0.0; outer * m * inner * c_out];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| ((o * len + j) * inner + i) * c;
            let seq: Vec<(f64, f64)> = (0..len).map(|j| (v[at(j)], if c == 2 { v[at(j) + 1] } else { 0.0 })).collect();
            let y = if irfft { dft(&hermitian(&seq, n), n, true) } else { dft(&seq, n, spec.inverse) };
            for (k, (re, im)) in y.into_iter().take(m).enumerate() {
                let p = ((o * m + k) * inner + i) * c_out;
                out[p] = re;
                if c_out == 2 {
                    out[p + 1] = im;
                }
            }
        }
    }
    let mut shape = dims.to_vec();
    shape[axis] = m;
    shape[r - 1] = c_out;
    Tensor::from_vec(out, shape, x.device())?.to_dtype(x.dtype())
}

/// A scalar integer input (absent: `None`).
fn scalar_int(xs: &[Option<&Tensor>], i: usize) -> CResult<Option<i64>> {
    match xs.get(i).copied().flatten() {
        None => Ok(None),
        Some(t) => match int_values(t)?.first() {
            Some(&v) => Ok(Some(v)),
            None => bail!("input {i}: expected a scalar, got an empty tensor"),
        },
    }
}

/// A scalar input as f64.
fn scalar_f64(xs: &[Option<&Tensor>], i: usize) -> CResult<f64> {
    input(xs, i)?.flatten_all()?.to_dtype(DType::F64)?.get(0)?.to_scalar::<f64>()
}

/// A length from a scalar input: non-negative.
fn length(v: i64, what: &str) -> CResult<usize> {
    usize::try_from(v).map_err(|_| candle_core::Error::Msg(format!("{what} {v} is negative")))
}

fn dft_kernel(ctx: &NodeCtx, axis_attr: Option<i64>) -> Result<Box<dyn Kernel>> {
    let (inverse, onesided) = (ctx.int("inverse", 0) != 0, ctx.int("onesided", 0) != 0);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let n = scalar_int(xs, 1)?.map(|n| length(n, "dft_length")).transpose()?;
        let a = match axis_attr {
            Some(a) => a,
            None => scalar_int(xs, 2)?.unwrap_or(-2),
        };
        Ok(vec![dft_along(x, axis(a, x.rank())?, DftSpec { n, inverse, onesided })?])
    }))
}

/// DFT 17: `axis` is an attribute.
pub fn dft_17(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    dft_kernel(ctx, Some(ctx.int("axis", 1)))
}

/// DFT 20: `axis` is the optional third input.
pub fn dft_20(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    dft_kernel(ctx, None)
}

/// STFT (17): signal `[batch, len, 1|2]`, frame_step, optional window and frame_length;
/// output `[batch, frames, bins, 2]`.
pub fn stft(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let onesided = ctx.int("onesided", 1) != 0;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let step = scalar_int(xs, 1)?.map(|s| length(s, "frame_step")).transpose()?.unwrap_or(0);
        let window = xs.get(2).copied().flatten();
        let frame_length = match (scalar_int(xs, 3)?, window) {
            (Some(f), _) => length(f, "frame_length")?,
            (None, Some(w)) => w.dim(0)?,
            (None, None) => x.dim(1)?,
        };
        let (batch, len, c) = x.dims3()?;
        let size = window.map_or(Ok(frame_length), |w| w.dim(0))?;
        if step == 0 || frame_length == 0 || len < frame_length {
            bail!("STFT: frame_step {step} and frame_length {frame_length} do not fit a signal of {len}")
        }
        let frames = 1 + (len - frame_length) / step;
        // Frames `[batch, frames, size, c]`, zero past the signal's end, times the window.
        let v = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let w = match window {
            Some(w) => w.to_dtype(DType::F64)?.to_vec1::<f64>()?,
            None => vec![1.0; size],
        };
        let mut framed = vec![0.0; batch * frames * size * c];
        for b in 0..batch {
            for f in 0..frames {
                for j in 0..size.min(len.saturating_sub(f * step)) {
                    for k in 0..c {
                        framed[((b * frames + f) * size + j) * c + k] = v[(b * len + f * step + j) * c + k] * w[j];
                    }
                }
            }
        }
        let framed = Tensor::from_vec(framed, (batch, frames, size, c), x.device())?;
        let spec = DftSpec { n: Some(frame_length), inverse: false, onesided };
        Ok(vec![dft_along(&framed, 2, spec)?.to_dtype(x.dtype())?])
    }))
}

/// A window of `size` points: `f(n, N)` with N = size (periodic) or size - 1 (symmetric).
fn window(ctx: &NodeCtx, f: fn(f64, f64) -> f64) -> Result<Box<dyn Kernel>> {
    let periodic = ctx.int("periodic", 1) != 0;
    let dtype = output_dtype(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let size = length(scalar_int(xs, 0)?.unwrap_or(0), "size")?;
        let big_n = if periodic { size as f64 } else { size as f64 - 1.0 };
        let v: Vec<f64> = (0..size).map(|n| f(n as f64, big_n)).collect();
        Ok(vec![Tensor::from_vec(v, size, &Device::Cpu)?.to_dtype(dtype)?])
    }))
}

/// The `output_datatype` attribute (default float).
fn output_dtype(ctx: &NodeCtx) -> Result<DType> {
    let code = ctx.int("output_datatype", 1);
    let bad = || ctx.unsupported(&format!("output_datatype {code}"));
    dtype_of_onnx(i32::try_from(code).map_err(|_| bad())?).map_err(|_| bad())
}

pub fn hann_window(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    window(ctx, |n, big_n| (PI * n / big_n).sin().powi(2))
}

pub fn hamming_window(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    const ALPHA: f64 = 25.0 / 46.0;
    window(ctx, |n, big_n| ALPHA - (1.0 - ALPHA) * (2.0 * PI * n / big_n).cos())
}

pub fn blackman_window(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    window(ctx, |n, big_n| 0.42 - 0.5 * (2.0 * PI * n / big_n).cos() + 0.08 * (4.0 * PI * n / big_n).cos())
}

/// MelWeightMatrix (17): inputs num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
/// upper_edge_hertz; output `[dft_length / 2 + 1, num_mel_bins]`, as the ONNX reference builds it
/// (bin edges `floor((dft_length + 1) * hz / sample_rate)`).
pub fn mel_weight_matrix(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let dtype = output_dtype(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let int_at = |i| scalar_int(xs, i)?.ok_or_else(|| candle_core::Error::Msg(format!("missing input {i}")));
        let (mels, dft_len, rate) = (length(int_at(0)?, "num_mel_bins")?, int_at(1)?, int_at(2)?);
        let (lo, hi) = (scalar_f64(xs, 3)?, scalar_f64(xs, 4)?);
        let mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
        let step = (mel(hi) - mel(lo)) / (mels + 2) as f64;
        let edges: Vec<usize> = (0..mels + 2)
            .map(|i| {
                let hz = 700.0 * (10f64.powf((i as f64 * step + mel(lo)) / 2595.0) - 1.0);
                ((dft_len + 1) as f64 * hz / rate as f64).floor().max(0.0) as usize
            })
            .collect();
        let bins = length(dft_len, "dft_length")? / 2 + 1;
        let mut out = vec![0.0f64; bins * mels];
        let mut set = |j: usize, i: usize, v: f64| match out.get_mut(j * mels + i) {
            Some(p) => {
                *p = v;
                Ok(())
            }
            None => Err(candle_core::Error::Msg(format!("MelWeightMatrix: bin {j} past {bins}"))),
        };
        for i in 0..mels {
            let (l, c, h) = (edges[i], edges[i + 1], edges[i + 2]);
            if c == l {
                set(c, i, 1.0)?;
            } else {
                for j in l..=c {
                    set(j, i, (j - l) as f64 / (c - l) as f64)?;
                }
            }
            for j in c..h {
                set(j, i, (h - j) as f64 / (h - c) as f64)?;
            }
        }
        Ok(vec![Tensor::from_vec(out, (bins, mels), &Device::Cpu)?.to_dtype(dtype)?])
    }))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::test_util::*;

    fn i64s(v: &[i64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn dft_of_a_real_signal_and_back() {
        // x = [1, 2, 3, 4]: X = [10, -2+2i, -2, -2-2i].
        let x = t(&[1, 4, 1], &[1., 2., 3., 4.]);
        let k = build(&node("DFT", 1, vec![int("axis", 1)]), 17);
        let y = k.run(&[Some(&x)]).unwrap().remove(0);
        assert_eq!(y.dims(), &[1, 4, 2]);
        assert_close(&values(&y), &[10., 0., -2., 2., -2., 0., -2., -2.], 1e-5);
        // Inverse at opset 20 (axis input absent: -2) recovers x as a complex signal.
        let back = build(&node("DFT", 1, vec![int("inverse", 1)]), 20).run(&[Some(&y)]).unwrap().remove(0);
        assert_close(&values(&back), &[1., 0., 2., 0., 3., 0., 4., 0.], 1e-5);
        // One-sided forward keeps n/2 + 1 bins; the one-sided inverse (irfft) returns x real.
        let half = build(&node("DFT", 1, vec![int("onesided", 1)]), 20).run(&[Some(&x)]).unwrap().remove(0);
        assert_close(&values(&half), &[10., 0., -2., 2., -2., 0.], 1e-5);
        let k = build(&node("DFT", 1, vec![int("onesided", 1), int("inverse", 1)]), 20);
        let real = k.run(&[Some(&half)]).unwrap().remove(0);
        assert_eq!(real.dims(), &[1, 4, 1]);
        assert_close(&values(&real), &[1., 2., 3., 4.], 1e-5);
    }

    #[test]
    fn dft_length_pads_the_signal() {
        // [1, 1] padded to 4: X_k = 1 + e^{-i pi k / 2} = [2, 1-i, 0, 1+i].
        let x = t(&[2, 1], &[1., 1.]);
        let k = build(&node("DFT", 2, vec![int("axis", 0)]), 17);
        let y = k.run(&[Some(&x), Some(&i64s(&[4]).squeeze(0).unwrap())]).unwrap().remove(0);
        assert_close(&values(&y), &[2., 0., 1., -1., 0., 0., 1., 1.], 1e-6);
    }

    #[test]
    fn stft_frames_and_windows() {
        // Signal [1, 2, 3, 4, 5], frames of 2 every 2 (two frames), window [1, 0.5]:
        // frames [1, 1], [3, 2]; one-sided DFTs [2, 0] and [5, 1].
        let x = t(&[1, 5, 1], &[1., 2., 3., 4., 5.]);
        let w = t(&[2], &[1., 0.5]);
        let step = i64s(&[2]).squeeze(0).unwrap();
        let y = build(&node("STFT", 3, vec![]), 17).run(&[Some(&x), Some(&step), Some(&w)]).unwrap().remove(0);
        assert_eq!(y.dims(), &[1, 2, 2, 2]);
        assert_close(&values(&y), &[2., 0., 0., 0., 5., 0., 1., 0.], 1e-6);
    }

    #[test]
    fn windows() {
        let size = i64s(&[4]).squeeze(0).unwrap();
        let run = |op: &str, periodic: i64| {
            values(&build(&node(op, 1, vec![int("periodic", periodic)]), 17).run(&[Some(&size)]).unwrap()[0])
        };
        assert_close(&run("HannWindow", 1), &[0., 0.5, 1., 0.5], 1e-6);
        assert_close(&run("HannWindow", 0), &[0., 0.75, 0.75, 0.], 1e-6);
        assert_close(&run("HammingWindow", 1), &[0.086_956_52, 0.543_478_3, 1., 0.543_478_3], 1e-6);
        assert_close(&run("BlackmanWindow", 1), &[0., 0.34, 1., 0.34], 1e-6);
    }

    #[test]
    fn mel_weight_matrix_is_triangular() {
        // 1 mel bin over 0..4000 Hz at 8 kHz with dft_length 8: mel edges 0, 715, 1431 are
        // 0, 621, 1791 Hz, bins floor(9 * hz / 8000) = 0, 0, 2: a peak at 0 falling to bin 2.
        let ins = [i64s(&[1]), i64s(&[8]), i64s(&[8000]), t(&[1], &[0.]), t(&[1], &[4000.])];
        let ins: Vec<Option<&Tensor>> = ins.iter().map(Some).collect();
        let y = build(&node("MelWeightMatrix", 5, vec![]), 17).run(&ins).unwrap().remove(0);
        assert_eq!(y.dims(), &[5, 1]);
        assert_close(&values(&y), &[1., 0.5, 0., 0., 0.], 0.0);
    }
}
