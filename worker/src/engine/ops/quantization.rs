//! Quantization. Spec: DequantizeLinear and QuantizeLinear (opsets 10, 13 `axis`, 19, 21
//! `block_size`/`output_dtype`, 23, 25: per-tensor, per-axis and blocked; uint8, int8, int16,
//! uint16 outputs with saturation and round-half-to-even), DynamicQuantizeLinear (11),
//! MatMulInteger (10), ConvInteger (10), QLinearMatMul (10, 21), QLinearConv (10).
//! com.microsoft MatMulNBits has its own kernel in `nbits.rs` (its test of the registry row
//! stays here).
//!
//! Integer products are computed in f64 (exact for any realistic size) after subtracting the zero
//! points, then rescaled and requantized on the host. int8 and int16 are both stored as i16 and
//! uint16 as i32 (see `engine::tensor`), so a zero point's dtype cannot tell int8 from int16:
//! an i16 zero point means int8 unless `output_dtype` says int16.

use candle_core::{DType, Tensor};

use super::conv::ConvAttrs;
use super::matmul::matmul_tensors;
use super::{axis, input, Kernel, NodeCtx};
use crate::engine::tensor::onnx_type;
use crate::error::Result;

/// A quantized integer type: its range and the candle dtype that stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum QType {
    U8,
    I8,
    I16,
    U16,
    U4,
    I4,
    U2,
    I2,
}

impl QType {
    /// The type a zero point of `dtype` stands for.
    fn of_dtype(dtype: DType) -> candle_core::Result<Self> {
        Ok(match dtype {
            DType::U8 => QType::U8,
            DType::I16 => QType::I8,
            DType::I32 => QType::U16,
            other => candle_core::bail!("quantized type stored as {other:?} is not supported"),
        })
    }

    fn of_onnx(code: i64) -> Option<Self> {
        Some(match code as i32 {
            onnx_type::UINT8 => QType::U8,
            onnx_type::INT8 => QType::I8,
            onnx_type::INT16 => QType::I16,
            onnx_type::UINT16 => QType::U16,
            onnx_type::UINT4 => QType::U4,
            onnx_type::INT4 => QType::I4,
            onnx_type::UINT2 => QType::U2,
            onnx_type::INT2 => QType::I2,
            _ => return None,
        })
    }

    fn range(self) -> (f64, f64) {
        match self {
            QType::U8 => (0.0, 255.0),
            QType::I8 => (-128.0, 127.0),
            QType::I16 => (-32768.0, 32767.0),
            QType::U16 => (0.0, 65535.0),
            QType::U4 => (0.0, 15.0),
            QType::I4 => (-8.0, 7.0),
            QType::U2 => (0.0, 3.0),
            QType::I2 => (-2.0, 1.0),
        }
    }

    fn dtype(self) -> DType {
        match self {
            // As engine/tensor.rs stores them: unsigned low-bit as U8, signed as I16.
            QType::U8 | QType::U4 | QType::U2 => DType::U8,
            QType::I8 | QType::I16 | QType::I4 | QType::I2 => DType::I16,
            QType::U16 => DType::I32,
        }
    }

    /// round-half-to-even(`v`) + `zero_point`, saturated, as this type.
    fn quantize(self, v: &Tensor, zero_point: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (lo, hi) = self.range();
        let vals = v.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let zps = match zero_point {
            Some(z) => z.broadcast_as(v.shape())?.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?,
            None => vec![0.0; vals.len()],
        };
        let q: Vec<f64> = vals.iter().zip(&zps).map(|(v, z)| (v.round_ties_even() + z).clamp(lo, hi)).collect();
        Tensor::from_vec(q, v.shape(), v.device())?.to_dtype(self.dtype())
    }
}

/// A scale or zero point shaped to broadcast against `dims`: a scalar, a 1-D tensor along `axis`,
/// or (with `block > 0`) a tensor of `dims`' rank whose `axis` is repeated `block` times.
fn along(p: &Tensor, dims: &[usize], axis: usize, block: usize) -> candle_core::Result<Tensor> {
    if p.elem_count() == 1 {
        return p.flatten_all()?.reshape(vec![1; dims.len()]);
    }
    if block > 0 && p.rank() == dims.len() {
        let idx: Vec<u32> = (0..dims[axis]).map(|i| (i / block) as u32).collect();
        return p.contiguous()?.index_select(&Tensor::new(idx, p.device())?, axis);
    }
    let mut shape = vec![1usize; dims.len()];
    shape[axis] = p.elem_count();
    p.reshape(shape)
}

/// `x - zero_point` in f64, the zero point a scalar or per-channel along `axis`.
pub fn shifted(x: &Tensor, zero_point: Option<&Tensor>, axis: usize) -> candle_core::Result<Tensor> {
    let x = x.to_dtype(DType::F64)?;
    match zero_point {
        None => Ok(x),
        Some(z) => x.broadcast_sub(&along(&z.to_dtype(DType::F64)?, x.dims(), axis, 0)?),
    }
}

fn opt<'a>(xs: &[Option<&'a Tensor>], i: usize) -> Option<&'a Tensor> {
    xs.get(i).copied().flatten()
}

/// The attributes DequantizeLinear and QuantizeLinear share.
#[derive(Debug, Clone, Copy)]
struct QAttrs {
    axis: i64,
    block: usize,
}

impl QAttrs {
    fn from_ctx(ctx: &NodeCtx) -> Self {
        QAttrs { axis: ctx.int("axis", 1), block: ctx.int("block_size", 0).max(0) as usize }
    }

    /// `p` (scale or zero point) shaped to broadcast against `x`.
    fn param(&self, p: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
        if p.elem_count() == 1 {
            return along(p, x.dims(), 0, 0);
        }
        along(p, x.dims(), axis(self.axis, x.rank())?, self.block)
    }
}

pub fn dequantize_linear(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = QAttrs::from_ctx(ctx);
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, scale) = (input(xs, 0)?, input(xs, 1)?);
        let mut y = x.to_dtype(DType::F64)?;
        if let Some(z) = opt(xs, 2) {
            y = y.broadcast_sub(&a.param(&z.to_dtype(DType::F64)?, x)?)?;
        }
        let y = y.broadcast_mul(&a.param(&scale.to_dtype(DType::F64)?, x)?)?;
        Ok(vec![y.to_dtype(scale.dtype())?])
    }))
}

pub fn quantize_linear(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let a = QAttrs::from_ctx(ctx);
    let output_dtype = ctx.int("output_dtype", 0);
    let forced = match output_dtype {
        // Without output_dtype, the zero point's declared type (stored i16 may be int8, int16
        // or int4; only the graph says which).
        0 => ctx.input_type(2).and_then(|code| QType::of_onnx(code as i64)),
        code => Some(QType::of_onnx(code).ok_or_else(|| ctx.unsupported(&format!("output_dtype {code}")))?),
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, scale) = (input(xs, 0)?, input(xs, 1)?);
        let zp = opt(xs, 2);
        let q = match (forced, zp) {
            (Some(q), _) => q,
            (None, Some(z)) => QType::of_dtype(z.dtype())?,
            (None, None) => QType::U8,
        };
        // x / scale in x's own float type, as the reference rounds it.
        let x = if x.dtype().is_float() { x.clone() } else { x.to_dtype(DType::F32)? };
        let v = x.broadcast_div(&a.param(&scale.to_dtype(x.dtype())?, &x)?)?;
        let zp = zp.map(|z| a.param(z, &x)).transpose()?;
        Ok(vec![q.quantize(&v, zp.as_ref())?])
    }))
}

pub fn dynamic_quantize_linear(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?.to_dtype(DType::F32)?;
        let v = x.flatten_all()?.to_vec1::<f32>()?;
        let lo = v.iter().copied().fold(0.0f32, f32::min);
        let hi = v.iter().copied().fold(0.0f32, f32::max);
        let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
        let dev = x.device().clone();
        let scale_t = Tensor::new(scale, &dev)?;
        let y = QType::U8.quantize(&x.broadcast_div(&scale_t)?, Some(&Tensor::new(zp as f64, &dev)?))?;
        Ok(vec![y, scale_t, Tensor::new(zp as u8, &dev)?])
    }))
}

/// (A - a_zero_point) · (B - b_zero_point) in f64; a's zero point may be per row, b's per column.
fn integer_matmul(a: &Tensor, az: Option<&Tensor>, b: &Tensor, bz: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let a = shifted(a, az, a.rank().saturating_sub(2))?;
    let b = shifted(b, bz, b.rank().saturating_sub(1))?;
    matmul_tensors(&a, &b)
}

pub fn matmul_integer(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let y = integer_matmul(input(xs, 0)?, opt(xs, 2), input(xs, 1)?, opt(xs, 3))?;
        Ok(vec![y.to_dtype(DType::I32)?])
    }))
}

/// Requantize an integer accumulator: `acc · (scale_a · scale_b / scale_y)` + y's zero point.
/// Scales are scalars or per-channel along `channel` of `acc`.
fn requantize(acc: &Tensor, sa: &Tensor, sb: &Tensor, sy: &Tensor, zy: Option<&Tensor>, channel: usize, fallback: DType) -> candle_core::Result<Tensor> {
    let f = |s: &Tensor| -> candle_core::Result<Tensor> { along(&s.to_dtype(DType::F64)?, acc.dims(), channel, 0) };
    let v = acc.broadcast_mul(&f(sa)?.broadcast_mul(&f(sb)?)?.broadcast_div(&f(sy)?)?)?;
    let q = QType::of_dtype(zy.map_or(fallback, |z| z.dtype()))?;
    let zy = zy.map(|z| along(z, acc.dims(), channel, 0)).transpose()?;
    q.quantize(&v, zy.as_ref())
}

pub fn qlinear_matmul(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let (a, b) = (input(xs, 0)?, input(xs, 3)?);
        let acc = integer_matmul(a, opt(xs, 2), b, opt(xs, 5))?;
        let last = acc.rank().saturating_sub(1);
        Ok(vec![requantize(&acc, input(xs, 1)?, input(xs, 4)?, input(xs, 6)?, opt(xs, 7), last, a.dtype())?])
    }))
}

pub fn conv_integer(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = ConvAttrs::from_ctx(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = shifted(input(xs, 0)?, opt(xs, 2), 1)?;
        let w = shifted(input(xs, 1)?, opt(xs, 3), 0)?;
        Ok(vec![attrs.apply(&x, &w)?.to_dtype(DType::I32)?])
    }))
}

pub fn qlinear_conv(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let attrs = ConvAttrs::from_ctx(ctx)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        let xq = shifted(x, opt(xs, 2), 1)?;
        let w = shifted(input(xs, 3)?, opt(xs, 5), 0)?;
        let mut acc = attrs.apply(&xq, &w)?;
        if let Some(b) = opt(xs, 8) {
            acc = acc.broadcast_add(&along(&b.to_dtype(DType::F64)?, acc.dims(), 1, 0)?)?;
        }
        Ok(vec![requantize(&acc, input(xs, 1)?, input(xs, 4)?, input(xs, 6)?, opt(xs, 7), 1, x.dtype())?])
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let x = t(&[6], &[0.5, 1.5, 2.5, -1.0, 300.0, 3.0]);
        let s = t(&[], &[1.0]);
        let z = Tensor::new(0u8, &Device::Cpu).unwrap();
        let y = build(&node("QuantizeLinear", 3, vec![]), 13).run(&[Some(&x), Some(&s), Some(&z)]).unwrap();
        assert_eq!(y[0].to_vec1::<u8>().unwrap(), vec![0, 2, 2, 0, 255, 3]);
    }

    #[test]
    fn dequantize_per_axis_and_blocked() {
        let x = Tensor::new(&[[10u8, 20], [30, 40]], &Device::Cpu).unwrap();
        let s = t(&[2], &[1.0, 0.5]);
        let z = Tensor::new(&[10u8, 20], &Device::Cpu).unwrap();
        let k = build(&node("DequantizeLinear", 3, vec![int("axis", 0)]), 13);
        let y = k.run(&[Some(&x), Some(&s), Some(&z)]).unwrap();
        assert_close(&values(&y[0]), &[0., 10., 5., 10.], 0.0);
        // Blocks of 2 along axis 1: one scale per row.
        let s = t(&[2, 1], &[2.0, 3.0]);
        let k = build(&node("DequantizeLinear", 2, vec![int("axis", 1), int("block_size", 2)]), 21);
        let y = k.run(&[Some(&x), Some(&s)]).unwrap();
        assert_close(&values(&y[0]), &[20., 40., 90., 120.], 0.0);
    }

    #[test]
    fn matmul_nbits_dequantizes_4_bit_blocks() {
        // N = 1, K = 16, one block of 16 with scale 0.5 and the default zero point 8.
        // Values 0..15 packed low nibble first: bytes (2i) | (2i+1) << 4.
        let packed: Vec<u8> = (0..8u8).map(|i| (2 * i) | ((2 * i + 1) << 4)).collect();
        let b = Tensor::from_vec(packed, (1, 1, 8), &Device::Cpu).unwrap();
        let scales = t(&[1], &[0.5]);
        let a = t(&[1, 16], &[1.0; 16]);
        let mut n = node("MatMulNBits", 3, vec![int("K", 16), int("N", 1), int("bits", 4), int("block_size", 16)]);
        n.domain = "com.microsoft".into();
        let y = build(&n, 1).run(&[Some(&a), Some(&b), Some(&scales)]).unwrap();
        // Σ (q - 8)·0.5 over q = 0..15 = (120 - 128)·0.5.
        assert_close(&values(&y[0]), &[-4.0], 1e-6);
        // A packed zero point of 0 for the single block: Σ q·0.5 = 60.
        let zp = Tensor::new(&[0u8], &Device::Cpu).unwrap();
        let y = build(&n, 1).run(&[Some(&a), Some(&b), Some(&scales), Some(&zp)]).unwrap();
        assert_close(&values(&y[0]), &[60.0], 1e-6);
    }

    #[test]
    fn qlinear_matmul_requantizes() {
        let a = Tensor::new(&[[2u8, 4]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[1u8], [3]], &Device::Cpu).unwrap();
        let one = t(&[], &[1.0]);
        let half = t(&[], &[0.5]);
        let z0 = Tensor::new(0u8, &Device::Cpu).unwrap();
        let zy = Tensor::new(1u8, &Device::Cpu).unwrap();
        let k = build(&node("QLinearMatMul", 8, vec![]), 10);
        let y = k.run(&[Some(&a), Some(&one), Some(&z0), Some(&b), Some(&half), Some(&z0), Some(&one), Some(&zy)]).unwrap();
        // (2·1 + 4·3)·0.5 + 1 = 8.
        assert_eq!(y[0].flatten_all().unwrap().to_vec1::<u8>().unwrap(), vec![8]);
    }

    #[test]
    fn conv_integer_subtracts_zero_points() {
        let x = Tensor::new(&[[[3u8, 4, 5]]], &Device::Cpu).unwrap();
        let w = Tensor::new(&[[[1u8, 2]]], &Device::Cpu).unwrap();
        let z = Tensor::new(&[1u8], &Device::Cpu).unwrap();
        let y = build(&node("ConvInteger", 3, vec![]), 10).run(&[Some(&x), Some(&w), Some(&z)]).unwrap();
        // x - 1 = [2, 3, 4]; windows · [1, 2] = [8, 11].
        assert_eq!(y[0].flatten_all().unwrap().to_vec1::<i32>().unwrap(), vec![8, 11]);
    }
}
