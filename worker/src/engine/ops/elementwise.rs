//! Elementwise ops: arithmetic, comparisons and logic with numpy broadcasting, unary math,
//! activations, the variadic Min/Max/Sum/Mean, Where, Clip and casts.
//! Spec: https://onnx.ai/onnx/operators/, covering
//! - Add, Sub, Mul, Div, Pow: opset 1 (legacy `broadcast`: B aligned to A from `axis`) and 7+
//!   (numpy broadcasting); Pow's separate exponent type (12+) is cast to the base type. The
//!   legacy `broadcast`/`axis` applies to every binary op before opset 7.
//! - Min, Max, Sum, Mean (1+, broadcasting from 8; equal shapes before broadcast the same way).
//! - Equal, Less, Greater (1+), LessOrEqual, GreaterOrEqual (12+), And, Or, Xor, Not (1+),
//!   Where (9+), IsNaN (9+), IsInf (10+); booleans are U8 0/1, as candle's comparisons return.
//! - BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot (18+), on the stored integers (uint64 as I64
//!   has the same bits; BitwiseNot masks uint16, stored as I32, by the declared input type).
//! - Relu, Sigmoid, Tanh, Exp, Log, Neg, Abs, Sqrt, Reciprocal, Floor, Ceil (1+), Sin, Cos, Tan,
//!   Asin, Acos, Atan (7+), Sinh, Cosh, Asinh, Acosh, Atanh, Erf, Sign (9+), Round (11+, half to
//!   even).
//! - LeakyRelu, Elu, Selu, Softplus, Softsign, HardSigmoid (1+), PRelu (1–6: a 1-D slope runs
//!   along the channel axis; 7+: numpy), ThresholdedRelu (10+), Shrink (9+), Celu (12+),
//!   HardSwish (14+), Mish (18+), Gelu (20+, `approximate` none/tanh), Swish (24+, `alpha`).
//! - Clip: `min`/`max` attributes in opsets 1–10, optional inputs from 11.
//! - Mod (10+, `fmod`), BitShift (11+), Cast (6+, `to`; `saturate` 19+ and `round_mode` 24+
//!   for the float8/float4/e8m0 and 4-/2-bit integer targets), CastLike (15+), BitCast (26+).
//!
//! Everything runs on candle's kernels in the input dtype, except the functions candle has no
//! kernel for (Tan, the inverse and hyperbolic trig, Round half-to-even, general Pow, Mod,
//! BitShift): those map each element on the host in f64 (floats) or i64 (integers) and cast the
//! result back to the input dtype. candle's float kernels panic on integer tensors, so ops the
//! spec defines for floats only check the dtype first (an error, not a crash), and integer Neg
//! is `0 - x`.

use candle_core::{bail, DType, Result as CResult, Tensor, WithDType};

use super::simd::{self, V4};
use super::{fast, input, Kernel, NodeCtx};
use crate::engine::lowbit::{e8m0, E8m0Round, LowBit};
use crate::engine::tensor::{self, dtype_of_onnx, onnx_type};
use crate::error::Result;

// ---- The shapes of op: one helper each -------------------------------------------------------

/// A binary op with numpy broadcasting; before opset 7, with `broadcast` set, B's dims are
/// matched to A's from `axis` on (default: A's trailing dims).
fn binary(
    ctx: &NodeCtx,
    f: impl Fn(&Tensor, &Tensor) -> CResult<Tensor> + 'static,
) -> Result<Box<dyn Kernel>> {
    let legacy_axis = (ctx.opset < 7 && ctx.int("broadcast", 0) != 0).then(|| ctx.attr("axis").map(|a| a.i));
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (a, b) = (input(xs, 0)?, input(xs, 1)?);
        match legacy_axis {
            Some(at) => Ok(vec![f(a, &legacy_broadcast(b, a.rank(), at)?)?]),
            None => Ok(vec![f(a, b)?]),
        }
    }))
}

/// Opsets 1–6: B (rank k) reshaped to A's rank with its dims at `axis`..`axis + k` and ones
/// elsewhere; `axis` absent: A's last k dims.
fn legacy_broadcast(b: &Tensor, rank: usize, at: Option<i64>) -> CResult<Tensor> {
    let k = b.rank();
    let start = match at {
        Some(at) => super::axis(at, rank)?,
        None => rank.saturating_sub(k),
    };
    if start + k > rank {
        bail!("legacy broadcast: B {:?} does not fit rank {rank} from axis {start}", b.dims())
    }
    let mut shape = vec![1; rank];
    shape[start..start + k].copy_from_slice(b.dims());
    b.reshape(shape)
}

/// A unary op.
fn unary(f: impl Fn(&Tensor) -> CResult<Tensor> + 'static) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(move |xs: &[Option<&Tensor>]| Ok(vec![f(input(xs, 0)?)?])))
}

/// A unary op the spec defines for floats only. candle's float kernels panic (`todo!`) on
/// integer tensors, so the dtype is checked first and a wrong one is an error, not a crash.
fn float_unary(f: impl Fn(&Tensor) -> CResult<Tensor> + 'static) -> Result<Box<dyn Kernel>> {
    unary(move |x| {
        if !x.dtype().is_float() {
            bail!("expected a float tensor, got {:?}", x.dtype())
        }
        f(x)
    })
}

/// A unary float function candle has no kernel for, mapped on the host.
fn float_fn(f: fn(f64) -> f64) -> Result<Box<dyn Kernel>> {
    float_unary(move |x| map_float(x, f))
}

/// A variadic op folding its (broadcast) inputs pairwise; `mean` divides by their count.
fn variadic(f: fn(&Tensor, &Tensor) -> CResult<Tensor>, mean: bool) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let mut it = xs.iter().flatten();
        let first = it.next().ok_or_else(|| candle_core::Error::Msg("no inputs".into()))?;
        let mut n = 1usize;
        let acc = it.try_fold((*first).clone(), |acc, x| {
            n += 1;
            f(&acc, x)
        })?;
        Ok(vec![if mean { acc.affine(1.0 / n as f64, 0.0)? } else { acc }])
    }))
}

/// The inputs broadcast to their common numpy shape.
fn broadcast_all(xs: &[&Tensor]) -> CResult<Vec<Tensor>> {
    let mut shape = xs.first().map(|x| x.shape().clone()).unwrap_or_else(|| ().into());
    for x in xs {
        shape = shape.broadcast_shape_binary_op(x.shape(), "broadcast")?;
    }
    xs.iter().map(|x| x.broadcast_as(&shape)).collect()
}

/// A tensor's elements in row-major order, as `T`.
fn host<T: WithDType>(x: &Tensor) -> CResult<Vec<T>> {
    x.to_dtype(T::DTYPE)?.flatten_all()?.to_vec1::<T>()
}

/// `f` on every element, computed in f64; the result keeps x's dtype.
fn map_float(x: &Tensor, f: impl Fn(f64) -> f64) -> CResult<Tensor> {
    let v: Vec<f64> = host::<f64>(x)?.into_iter().map(f).collect();
    Tensor::from_vec(v, x.shape(), x.device())?.to_dtype(x.dtype())
}

/// `f` on the pairs of elements of a and b broadcast together; the result has a's dtype.
fn zip_host<T: WithDType>(a: &Tensor, b: &Tensor, f: fn(T, T) -> T) -> CResult<Tensor> {
    let ab = broadcast_all(&[a, b])?;
    let v: Vec<T> = host::<T>(&ab[0])?.into_iter().zip(host::<T>(&ab[1])?).map(|(x, y)| f(x, y)).collect();
    Tensor::from_vec(v, ab[0].shape(), a.device())?.to_dtype(a.dtype())
}

/// A binary function computed on the host: `float` in f64 (None: integers only), `int` in i64.
fn zip_map(
    a: &Tensor,
    b: &Tensor,
    float: Option<fn(f64, f64) -> f64>,
    int: fn(i64, i64) -> i64,
) -> CResult<Tensor> {
    let b = b.to_dtype(a.dtype())?;
    match (a.dtype().is_float(), float) {
        (false, _) => zip_host(a, &b, int),
        (true, Some(f)) => zip_host(a, &b, f),
        (true, None) => bail!("expected an integer tensor, got {:?}", a.dtype()),
    }
}

// ---- Arithmetic ------------------------------------------------------------------------------

/// `f32` operands in one pass where their layout allows ([`fast::zip`]), else candle's `slow`.
fn arith(
    f: fn(f32, f32) -> f32,
    slow: fn(&Tensor, &Tensor) -> CResult<Tensor>,
) -> impl Fn(&Tensor, &Tensor) -> CResult<Tensor> {
    move |a, b| fast::zip(a, b, f).unwrap_or_else(|| slow(a, b))
}

/// A float unary op: one pass for f32 ([`fast::map`]), candle's `slow` otherwise.
fn float_map(f: fn(f32) -> f32, slow: fn(&Tensor) -> CResult<Tensor>) -> Result<Box<dyn Kernel>> {
    float_unary(move |x| fast::map(x, f).unwrap_or_else(|| slow(x)))
}

/// A float unary op in four-lane vector math for f32 ([`fast::map_v`]), candle's `slow`
/// otherwise.
fn float_map_v(f: fn(V4) -> V4, slow: fn(&Tensor) -> CResult<Tensor>) -> Result<Box<dyn Kernel>> {
    float_unary(move |x| fast::map_v(x, f).unwrap_or_else(|| slow(x)))
}

pub fn add(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, arith(|x, y| x + y, Tensor::broadcast_add))
}
pub fn sub(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, arith(|x, y| x - y, Tensor::broadcast_sub))
}
pub fn mul(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, arith(|x, y| x * y, Tensor::broadcast_mul))
}
pub fn div(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, arith(|x, y| x / y, Tensor::broadcast_div))
}
pub fn pow(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, pow_tensors)
}

/// x ** e. A scalar exponent of 1, 2 or 0.5 on a float base (LayerNorm's `Pow(x, 2)`) uses
/// candle's kernels; anything else maps on the host, where negative bases stay exact.
fn pow_tensors(x: &Tensor, e: &Tensor) -> CResult<Tensor> {
    if x.dtype().is_float() && e.elem_count() == 1 && x.rank() >= e.rank() {
        let p = host::<f64>(e)?[0];
        if p == 1.0 {
            return Ok(x.clone());
        } else if p == 2.0 {
            return x.sqr();
        } else if p == 0.5 {
            return x.sqrt();
        }
    }
    let int_pow = |a: i64, b: i64| if b < 0 { 0 } else { a.wrapping_pow(b.min(u32::MAX as i64) as u32) };
    zip_map(x, e, Some(f64::powf), int_pow)
}

pub fn modulo(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    if ctx.int("fmod", 0) != 0 {
        // C fmod: the sign of the dividend.
        binary(ctx, |a, b| zip_map(a, b, Some(|x, y| x % y), |x, y| x.checked_rem(y).unwrap_or(0)))
    } else {
        // Python %: the sign of the divisor.
        binary(ctx, |a, b| {
            zip_map(
                a,
                b,
                Some(|x, y| floor_rem(x % y, y, 0.0)),
                |x, y| floor_rem(x.checked_rem(y).unwrap_or(0), y, 0),
            )
        })
    }
}

/// A truncated remainder `r` of a divisor `b` turned into the floored one (the sign of `b`).
fn floor_rem<T: Copy + PartialOrd + std::ops::Add<Output = T>>(r: T, b: T, zero: T) -> T {
    if r != zero && (r < zero) != (b < zero) {
        r + b
    } else {
        r
    }
}

pub fn bit_shift(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    match ctx.string("direction", "").as_str() {
        "LEFT" => binary(ctx, |a, b| zip_map(a, b, None, |x, s| x.checked_shl(s as u32).unwrap_or(0))),
        "RIGHT" => binary(ctx, |a, b| zip_map(a, b, None, |x, s| x.checked_shr(s as u32).unwrap_or(0))),
        other => Err(ctx.unsupported(&format!("direction {other:?}"))),
    }
}

pub fn min(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    variadic(Tensor::broadcast_minimum, false)
}
pub fn max(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    variadic(Tensor::broadcast_maximum, false)
}
pub fn sum(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    variadic(Tensor::broadcast_add, false)
}
pub fn mean(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    variadic(Tensor::broadcast_add, true)
}

// ---- Comparisons and logic (U8 0/1) ----------------------------------------------------------

pub fn equal(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_eq)
}
pub fn less(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_lt)
}
pub fn less_or_equal(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_le)
}
pub fn greater(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_gt)
}
pub fn greater_or_equal(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_ge)
}
pub fn and(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_mul)
}
pub fn or(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_maximum)
}
pub fn xor(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, Tensor::broadcast_ne)
}
pub fn not(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(|x| x.eq(0u8))
}

// ---- Bitwise (integers; unsigned stored types are masked back to their width) ------------------

pub fn bitwise_and(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, |a, b| zip_map(a, b, None, |x, y| x & y))
}
pub fn bitwise_or(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, |a, b| zip_map(a, b, None, |x, y| x | y))
}
pub fn bitwise_xor(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    binary(ctx, |a, b| zip_map(a, b, None, |x, y| x ^ y))
}
/// `!x` in i64, masked to the width of an unsigned type: uint16 (stored as I32) when the graph
/// declares it, else U8 and U32 by their storage. Signed types and uint64 (I64) keep the sign
/// extension, which is the same bits.
pub fn bitwise_not(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let uint16 = ctx.input_type(0) == Some(onnx_type::UINT16);
    unary(move |x| {
        let mask = match x.dtype() {
            DType::U8 => 0xff,
            DType::U32 => 0xffff_ffff,
            DType::I32 if uint16 => 0xffff,
            d if d.is_int() => -1,
            d => bail!("BitwiseNot: expected an integer tensor, got {d:?}"),
        };
        let v: Vec<i64> = host::<i64>(x)?.into_iter().map(|v| !v & mask).collect();
        Tensor::from_vec(v, x.shape(), x.device())?.to_dtype(x.dtype())
    })
}

pub fn is_nan(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(|x| x.ne(x))
}
pub fn is_inf(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (pos, neg) = (ctx.int("detect_positive", 1) != 0, ctx.int("detect_negative", 1) != 0);
    unary(move |x| match (pos, neg) {
        (true, true) => x.abs()?.eq(f64::INFINITY),
        (true, false) => x.eq(f64::INFINITY),
        (false, true) => x.eq(f64::NEG_INFINITY),
        (false, false) => x.zeros_like()?.to_dtype(DType::U8),
    })
}

/// `Where(cond, x, y)`, all three broadcast together.
pub fn where_op(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let v = broadcast_all(&[input(xs, 0)?, input(xs, 1)?, input(xs, 2)?])?;
        Ok(vec![v[0].where_cond(&v[1], &v[2])?])
    }))
}

// ---- Unary math ------------------------------------------------------------------------------

pub fn relu(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(|x| fast::map(x, |v| if v < 0.0 { 0.0 } else { v }).unwrap_or_else(|| x.relu()))
}
pub fn sigmoid(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    // Other float dtypes: 1 / (1 + e^-x) with candle's primitives.
    float_map_v(simd::sigmoid, |x| (x.neg()?.exp()? + 1.0)?.recip())
}
pub fn tanh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_map(f32::tanh, Tensor::tanh)
}
pub fn exp(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_map(f32::exp, Tensor::exp)
}
pub fn log(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::log)
}
pub fn neg(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    // candle's Neg has no integer kernel.
    unary(|x| if x.dtype().is_float() { x.neg() } else { x.zeros_like()?.sub(x) })
}
pub fn abs(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::abs)
}
pub fn sqrt(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::sqrt)
}
pub fn reciprocal(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::recip)
}
pub fn floor(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::floor)
}
pub fn ceil(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::ceil)
}
pub fn round(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    // candle rounds half away from zero; ONNX rounds half to even.
    float_fn(f64::round_ties_even)
}
pub fn sign(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    unary(Tensor::sign)
}
pub fn erf(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_map_v(simd::erf, Tensor::erf)
}
pub fn sin(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::sin)
}
pub fn cos(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(Tensor::cos)
}
pub fn tan(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::tan)
}
pub fn asin(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::asin)
}
pub fn acos(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::acos)
}
pub fn atan(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::atan)
}
pub fn sinh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::sinh)
}
pub fn cosh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::cosh)
}
pub fn asinh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::asinh)
}
pub fn acosh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::acosh)
}
pub fn atanh(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_fn(f64::atanh)
}

// ---- Activations -----------------------------------------------------------------------------

/// `max(x, 0) + alpha * (exp(min(x, 0) * inner) - 1)`: Elu (inner 1) and Celu (inner 1/alpha).
fn elu_like(x: &Tensor, alpha: f64, inner: f64) -> CResult<Tensor> {
    x.maximum(0.0)? + (x.minimum(0.0)?.affine(inner, 0.0)?.exp()? - 1.0)?.affine(alpha, 0.0)?
}

/// `clamp(alpha * x + beta, 0, 1)`.
fn hard_sigmoid_of(x: &Tensor, alpha: f64, beta: f64) -> CResult<Tensor> {
    x.affine(alpha, beta)?.clamp(0.0, 1.0)
}

/// `log(1 + e^x)`, as `max(x, 0) + log(1 + e^-|x|)` so large inputs do not overflow.
fn softplus_of(x: &Tensor) -> CResult<Tensor> {
    x.maximum(0.0)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

pub fn leaky_relu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 0.01) as f64;
    float_unary(move |x| x.maximum(0.0)? + x.minimum(0.0)?.affine(alpha, 0.0)?)
}
/// PRelu 7+: the slope broadcasts unidirectionally (numpy) to x.
pub fn prelu(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    prelu_kernel(false)
}
/// PRelu 1–6: a 1-D slope of x's channel count applies along axis 1.
pub fn prelu_legacy(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    prelu_kernel(true)
}
fn prelu_kernel(legacy: bool) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let (x, slope) = (input(xs, 0)?, input(xs, 1)?);
        let slope = match legacy && slope.rank() == 1 && x.rank() > 2 && slope.dim(0)? > 1 {
            true => legacy_broadcast(slope, x.rank(), Some(1))?,
            false => slope.clone(),
        };
        Ok(vec![x.maximum(0.0)?.broadcast_add(&x.minimum(0.0)?.broadcast_mul(&slope)?)?])
    }))
}
pub fn shrink(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (bias, lambd) = (ctx.float("bias", 0.0) as f64, ctx.float("lambd", 0.5) as f64);
    unary(move |x| {
        map_float(x, |v| match v {
            v if v < -lambd => v + bias,
            v if v > lambd => v - bias,
            _ => 0.0,
        })
    })
}
/// `x * sigmoid(alpha * x)` (24+).
pub fn swish(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.0) as f64;
    let a = V4::splat(alpha as f32);
    float_unary(move |x| match fast::map_v(x, |v| v.mul(simd::sigmoid(v.mul(a)))) {
        Some(y) => y,
        None => x.mul(&(x.affine(-alpha, 0.0)?.exp()? + 1.0)?.recip()?),
    })
}
pub fn elu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.0) as f64;
    float_unary(move |x| elu_like(x, alpha, 1.0))
}
pub fn celu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.0) as f64;
    float_unary(move |x| elu_like(x, alpha, 1.0 / alpha))
}
pub fn selu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.673_263_2) as f64;
    let gamma = ctx.float("gamma", 1.050_701) as f64;
    float_unary(move |x| elu_like(x, alpha, 1.0)?.affine(gamma, 0.0))
}
pub fn thresholded_relu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let alpha = ctx.float("alpha", 1.0) as f64;
    float_unary(move |x| x.gt(alpha)?.where_cond(x, &x.zeros_like()?))
}
pub fn hard_sigmoid(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (alpha, beta) = (ctx.float("alpha", 0.2) as f64, ctx.float("beta", 0.5) as f64);
    float_unary(move |x| hard_sigmoid_of(x, alpha, beta))
}
pub fn hard_swish(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(|x| x.mul(&hard_sigmoid_of(x, 1.0 / 6.0, 0.5)?))
}
pub fn softplus(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(softplus_of)
}
pub fn softsign(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(|x| x.div(&(x.abs()? + 1.0)?))
}
pub fn mish(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    float_unary(|x| x.mul(&softplus_of(x)?.tanh()?))
}
pub fn gelu(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    match ctx.string("approximate", "none").as_str() {
        "none" => float_map_v(simd::gelu, Tensor::gelu_erf),
        "tanh" => float_unary(Tensor::gelu),
        other => Err(ctx.unsupported(&format!("approximate {other:?}"))),
    }
}

// ---- Clip ------------------------------------------------------------------------------------

/// Opsets 1–10: bounds are attributes (absent: unbounded).
pub fn clip_attr(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let (lo, hi) = (ctx.float("min", f32::MIN), ctx.float("max", f32::MAX));
    unary(move |x| fast::map(x, |v| clamp(v, lo, hi)).unwrap_or_else(|| x.maximum(lo as f64)?.minimum(hi as f64)))
}

/// `min(max(v, lo), hi)`: with lo > hi everything becomes hi (the spec's rule); NaN stays NaN.
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v < lo { lo } else { v };
    if v > hi {
        hi
    } else {
        v
    }
}

/// Opset 11+: bounds are optional scalar inputs, in x's type.
pub fn clip(_: &NodeCtx) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(|xs: &[Option<&Tensor>]| {
        let x = input(xs, 0)?;
        // Scalar f32 bounds (ReLU6 and the like): one pass.
        let bound = |i: usize, default: f32| match xs.get(i).copied().flatten() {
            None => Some(default),
            Some(b) if b.elem_count() == 1 => fast::with_f32(b, |v| v[0]),
            Some(_) => None,
        };
        if let (Some(lo), Some(hi)) = (bound(1, f32::NEG_INFINITY), bound(2, f32::INFINITY)) {
            if let Some(y) = fast::map(x, |v| clamp(v, lo, hi)) {
                return Ok(vec![y?]);
            }
        }
        let mut y = x.clone();
        if let Some(lo) = xs.get(1).copied().flatten() {
            y = y.broadcast_maximum(&lo.to_dtype(y.dtype())?)?;
        }
        if let Some(hi) = xs.get(2).copied().flatten() {
            y = y.broadcast_minimum(&hi.to_dtype(y.dtype())?)?;
        }
        Ok(vec![y])
    }))
}

// ---- Casts ----------------------------------------------------------------------------------

/// What a Cast produces, read from `to` (and `saturate`, `round_mode`) when the plan is built.
#[derive(Clone, Copy)]
enum CastTarget {
    Plain(DType),
    /// `x != 0`, stored as U8 0/1.
    Bool,
    /// A type [`lowbit`] codes: values are rounded (floats) or wrapped (integers) to what the
    /// type holds and stored in its wider dtype.
    LowBit { kind: LowBit, saturate: bool, round: E8m0Round },
}

impl CastTarget {
    fn of_onnx(code: i32, saturate: bool, round: E8m0Round) -> Result<Self> {
        Ok(match LowBit::of_onnx(code) {
            Some(kind) => CastTarget::LowBit { kind, saturate, round },
            None if code == onnx_type::BOOL => CastTarget::Bool,
            None => CastTarget::Plain(dtype_of_onnx(code)?),
        })
    }

    fn apply(self, x: &Tensor) -> CResult<Tensor> {
        match self {
            CastTarget::Plain(dtype) => x.to_dtype(dtype),
            CastTarget::Bool => x.ne(0u8),
            CastTarget::LowBit { kind, saturate, round } => cast_low_bit(x, kind, saturate, round),
        }
    }
}

/// x cast to a low-bit type, in that type's stored dtype (F32 for floats, U8/I16 for integers).
fn cast_low_bit(x: &Tensor, kind: LowBit, saturate: bool, round: E8m0Round) -> CResult<Tensor> {
    let (shape, dev) = (x.shape(), x.device());
    match kind {
        LowBit::Float(f) => {
            let v: Vec<f32> = host::<f64>(x)?.into_iter().map(|v| f.round(v, saturate)).collect();
            Tensor::from_vec(v, shape, dev)
        }
        // The reference converts to float32 first and rounds from its bits.
        LowBit::E8m0 => {
            let v: Vec<f32> = host::<f32>(x)?.into_iter().map(|v| e8m0::round(v, saturate, round)).collect();
            Tensor::from_vec(v, shape, dev)
        }
        LowBit::Int { signed, .. } => {
            let v: Vec<i64> = match x.dtype().is_float() {
                true => host::<f64>(x)?.into_iter().map(|v| kind.int_of_float(v)).collect(),
                false => host::<i64>(x)?.into_iter().map(|v| kind.wrap_int(v)).collect(),
            };
            Tensor::from_vec(v, shape, dev)?.to_dtype(if signed { DType::I16 } else { DType::U8 })
        }
    }
}

pub fn cast(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let to = ctx.int("to", 0);
    let bad_to = || ctx.unsupported(&format!("to={to}"));
    let code = i32::try_from(to).map_err(|_| bad_to())?;
    let mode = ctx.string("round_mode", "up");
    let round = E8m0Round::parse(&mode).ok_or_else(|| ctx.unsupported(&format!("round_mode {mode:?}")))?;
    let target = CastTarget::of_onnx(code, ctx.int("saturate", 1) != 0, round).map_err(|_| bad_to())?;
    unary(move |x| target.apply(x))
}

/// The target is the second input's type. When the graph declares it, the cast is planned
/// like Cast's (so float8 or int4 targets round and wrap as they should); otherwise it is the
/// stored dtype, where bool and uint8 (both U8) or int4 and int16 (both I16) look alike.
pub fn cast_like(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let planned = match ctx.input_type(1) {
        Some(code) => {
            let mode = ctx.string("round_mode", "up");
            let round = E8m0Round::parse(&mode).ok_or_else(|| ctx.unsupported(&format!("round_mode {mode:?}")))?;
            Some(CastTarget::of_onnx(code, ctx.int("saturate", 1) != 0, round).map_err(|_| ctx.unsupported(&format!("target type {code}")))?)
        }
        None => None,
    };
    Ok(Box::new(move |xs: &[Option<&Tensor>]| {
        let target = planned.unwrap_or(CastTarget::Plain(input(xs, 1)?.dtype()));
        Ok(vec![target.apply(input(xs, 0)?)?])
    }))
}

/// BitCast (26+): the input's bytes, little-endian, read as type `to` of the same width. The
/// input's ONNX type is recovered from its stored dtype and that width (I16 holds int8 or
/// int16, I32 uint16 or int32); low-bit float inputs, decoded to F32, are refused.
pub fn bit_cast(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    let to = ctx.int("to", 0);
    let code = i32::try_from(to).map_err(|_| ctx.unsupported(&format!("to={to}")))?;
    let width = match LowBit::of_onnx(code) {
        None => tensor::byte_len(code, &[1]).map_err(|_| ctx.unsupported(&format!("to={to}")))?,
        Some(_) => return Err(ctx.unsupported(&format!("to={to} (a low-bit type)"))),
    };
    unary(move |x| {
        let bytes = le_bytes(x, width)?;
        tensor::from_raw(code, x.dims(), &bytes).map_err(|e| candle_core::Error::Msg(e.to_string()))
    })
}

/// x's elements as `width`-byte little-endian patterns: float bits, or integers' two's complement
/// truncated to the width. An error when x's dtype cannot store an ONNX type of that width.
fn le_bytes(x: &Tensor, width: usize) -> CResult<Vec<u8>> {
    let flat = x.flatten_all()?;
    fn each<T: WithDType>(flat: &Tensor, bits: fn(T) -> u64) -> CResult<Vec<u64>> {
        Ok(flat.to_vec1::<T>()?.into_iter().map(bits).collect())
    }
    let bits: Vec<u64> = match (x.dtype(), width) {
        (DType::F16, 2) => each(&flat, |v: half::f16| v.to_bits().into())?,
        (DType::BF16, 2) => each(&flat, |v: half::bf16| v.to_bits().into())?,
        (DType::F32, 4) => each(&flat, |v: f32| v.to_bits().into())?,
        (DType::F64, 8) => each(&flat, f64::to_bits)?,
        (DType::U8, 1) | (DType::I16, 1 | 2) | (DType::I32, 2 | 4) | (DType::U32, 4) | (DType::I64, 8) => {
            each(&flat.to_dtype(DType::I64)?, |v: i64| v as u64)?
        }
        (dtype, _) => bail!("BitCast: a {dtype:?} tensor holds no {}-bit type", width * 8),
    };
    Ok(bits.iter().flat_map(|b| b.to_le_bytes()[..width].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_onnx::onnx::AttributeProto;

    use super::super::test_util::*;

    fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: name.into(), f: v, r#type: 1, ..Default::default() }
    }

    fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto { name: name.into(), s: v.as_bytes().to_vec(), r#type: 3, ..Default::default() }
    }

    /// Run a node of `op` at `opset` on `inputs`; its first output.
    fn run(op: &str, opset: i64, attrs: Vec<AttributeProto>, inputs: &[&Tensor]) -> Tensor {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        build(&node(op, inputs.len(), attrs), opset).run(&ins).unwrap().remove(0)
    }

    fn ints_of(t: &Tensor) -> Vec<i64> {
        t.flatten_all().unwrap().to_dtype(DType::I64).unwrap().to_vec1::<i64>().unwrap()
    }

    fn i64s(v: &[i64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn add_broadcasts_numpy_style() {
        let a = t(&[2, 1], &[1., 2.]);
        let b = t(&[3], &[10., 20., 30.]);
        let y = run("Add", 13, vec![], &[&a, &b]);
        assert_eq!(y.dims(), &[2, 3]);
        assert_close(&values(&y), &[11., 21., 31., 12., 22., 32.], 0.0);
    }

    #[test]
    fn relu_and_sigmoid_match_their_definitions() {
        let x = t(&[4], &[-2., -0.5, 0., 3.]);
        assert_close(&values(&run("Relu", 13, vec![], &[&x])), &[0., 0., 0., 3.], 0.0);
        let want: Vec<f32> = [-2f32, -0.5, 0., 3.].iter().map(|v| 1. / (1. + (-v).exp())).collect();
        assert_close(&values(&run("Sigmoid", 13, vec![], &[&x])), &want, 1e-6);
    }

    #[test]
    fn pow_keeps_negative_bases_exact_and_raises_integers() {
        let x = t(&[3], &[-2., 3., 4.]);
        assert_close(&values(&run("Pow", 15, vec![], &[&x, &t(&[], &[3.])])), &[-8., 27., 64.], 1e-5);
        assert_close(&values(&run("Pow", 15, vec![], &[&x, &t(&[], &[2.])])), &[4., 9., 16.], 0.0);
        let y = run("Pow", 15, vec![], &[&i64s(&[2, -3]), &t(&[2], &[3., 2.])]);
        assert_eq!((y.dtype(), ints_of(&y)), (DType::I64, vec![8, 9]));
    }

    #[test]
    fn unary_math() {
        let x = t(&[6], &[-2.5, -0.5, 0.5, 1.5, 2.5, 2.7]);
        assert_close(&values(&run("Round", 11, vec![], &[&x])), &[-2., -0., 0., 2., 2., 3.], 0.0);
        assert_close(&values(&run("Floor", 13, vec![], &[&x])), &[-3., -1., 0., 1., 2., 2.], 0.0);
        assert_close(&values(&run("Ceil", 13, vec![], &[&x])), &[-2., -0., 1., 2., 3., 3.], 0.0);
        assert_close(&values(&run("Sign", 13, vec![], &[&x])), &[-1., -1., 1., 1., 1., 1.], 0.0);
        let x = t(&[3], &[-0.5, 0., 0.5]);
        let want = |f: fn(f32) -> f32| [-0.5f32, 0., 0.5].map(f).to_vec();
        assert_close(&values(&run("Tan", 7, vec![], &[&x])), &want(f32::tan), 1e-6);
        assert_close(&values(&run("Acos", 7, vec![], &[&x])), &want(f32::acos), 1e-6);
        assert_close(&values(&run("Atanh", 9, vec![], &[&x])), &want(f32::atanh), 1e-6);
        assert_close(&values(&run("Reciprocal", 13, vec![], &[&t(&[2], &[4., -0.5])])), &[0.25, -2.], 0.0);
        assert_close(&values(&run("Erf", 13, vec![], &[&x])), &[-0.520_499_9, 0., 0.520_499_9], 1e-5);
    }

    #[test]
    fn integers_neg_and_float_only_ops_refuse_them() {
        assert_eq!(ints_of(&run("Neg", 13, vec![], &[&i64s(&[3, -2])])), vec![-3, 2]);
        let k = build(&node("Exp", 1, vec![]), 13);
        assert!(k.run(&[Some(&i64s(&[1]))]).is_err());
    }

    #[test]
    fn variadic_ops_broadcast_all_inputs() {
        let a = t(&[2, 1], &[1., 5.]);
        let b = t(&[2], &[3., 4.]);
        let c = t(&[], &[2.]);
        assert_close(&values(&run("Max", 13, vec![], &[&a, &b, &c])), &[3., 4., 5., 5.], 0.0);
        assert_close(&values(&run("Min", 13, vec![], &[&a, &b, &c])), &[1., 1., 2., 2.], 0.0);
        assert_close(&values(&run("Sum", 13, vec![], &[&a, &b, &c])), &[6., 7., 10., 11.], 0.0);
        assert_close(&values(&run("Mean", 13, vec![], &[&a, &b])), &[2., 2.5, 4., 4.5], 1e-6);
    }

    #[test]
    fn comparisons_and_logic_are_u8_booleans() {
        let a = t(&[3], &[1., 2., 3.]);
        let b = t(&[], &[2.]);
        let y = run("Less", 13, vec![], &[&a, &b]);
        assert_eq!((y.dtype(), ints_of(&y)), (DType::U8, vec![1, 0, 0]));
        assert_eq!(ints_of(&run("GreaterOrEqual", 16, vec![], &[&a, &b])), vec![0, 1, 1]);
        assert_eq!(ints_of(&run("Equal", 13, vec![], &[&a, &b])), vec![0, 1, 0]);
        let p = Tensor::new(&[0u8, 0, 1, 1], &Device::Cpu).unwrap();
        let q = Tensor::new(&[0u8, 1, 0, 1], &Device::Cpu).unwrap();
        assert_eq!(ints_of(&run("And", 7, vec![], &[&p, &q])), vec![0, 0, 0, 1]);
        assert_eq!(ints_of(&run("Or", 7, vec![], &[&p, &q])), vec![0, 1, 1, 1]);
        assert_eq!(ints_of(&run("Xor", 7, vec![], &[&p, &q])), vec![0, 1, 1, 0]);
        assert_eq!(ints_of(&run("Not", 1, vec![], &[&p])), vec![1, 1, 0, 0]);
        let w = run("Where", 16, vec![], &[&p.narrow(0, 1, 2).unwrap(), &t(&[2, 1], &[1., 2.]), &b]);
        assert_eq!(w.dims(), &[2, 2]);
        assert_close(&values(&w), &[2., 1., 2., 2.], 0.0);
        let x = t(&[4], &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.]);
        assert_eq!(ints_of(&run("IsNaN", 13, vec![], &[&x])), vec![1, 0, 0, 0]);
        assert_eq!(ints_of(&run("IsInf", 10, vec![], &[&x])), vec![0, 1, 1, 0]);
        assert_eq!(ints_of(&run("IsInf", 10, vec![int("detect_positive", 0)], &[&x])), vec![0, 0, 1, 0]);
    }

    #[test]
    fn clip_bounds_are_attributes_before_opset_11_and_inputs_after() {
        let x = t(&[4], &[-2., 0., 1., 5.]);
        let y = run("Clip", 6, vec![float("min", -1.), float("max", 2.)], &[&x]);
        assert_close(&values(&y), &[-1., 0., 1., 2.], 0.0);
        let y = run("Clip", 13, vec![], &[&x, &t(&[], &[-1.]), &t(&[], &[2.])]);
        assert_close(&values(&y), &[-1., 0., 1., 2.], 0.0);
        // Only a max: the min input is absent.
        let k = build(&node("Clip", 3, vec![]), 13);
        let hi = t(&[], &[0.5]);
        let y = k.run(&[Some(&x), None, Some(&hi)]).unwrap();
        assert_close(&values(&y[0]), &[-2., 0., 0.5, 0.5], 0.0);
        // Integers from opset 12.
        let y = run("Clip", 12, vec![], &[&i64s(&[-5, 3, 9]), &i64s(&[0]).squeeze(0).unwrap()]);
        assert_eq!(ints_of(&y), vec![0, 3, 9]);
    }

    #[test]
    fn activations_match_their_definitions() {
        let xs = [-2f32, -0.5, 0., 1.5];
        let x = t(&[4], &xs);
        let check = |op: &str, opset: i64, attrs: Vec<AttributeProto>, f: &dyn Fn(f32) -> f32| {
            let want: Vec<f32> = xs.iter().map(|&v| f(v)).collect();
            assert_close(&values(&run(op, opset, attrs, &[&x])), &want, 1e-5);
        };
        check("LeakyRelu", 16, vec![float("alpha", 0.1)], &|v| if v < 0. { 0.1 * v } else { v });
        check("Elu", 6, vec![], &|v| if v < 0. { v.exp() - 1. } else { v });
        check("Celu", 12, vec![float("alpha", 2.)], &|v| v.max(0.) + (2. * ((v / 2.).exp() - 1.)).min(0.));
        let (a, g) = (1.673_263_2f32, 1.050_701f32);
        check("Selu", 6, vec![], &|v| g * if v < 0. { a * (v.exp() - 1.) } else { v });
        check("ThresholdedRelu", 10, vec![float("alpha", 0.)], &|v| if v > 0. { v } else { 0. });
        check("HardSigmoid", 6, vec![], &|v| (0.2 * v + 0.5).clamp(0., 1.));
        check("HardSwish", 14, vec![], &|v| v * (v / 6. + 0.5).clamp(0., 1.));
        check("Softplus", 1, vec![], &|v| (v.exp() + 1.).ln());
        check("Softsign", 1, vec![], &|v| v / (1. + v.abs()));
        check("Mish", 18, vec![], &|v| v * (v.exp() + 1.).ln().tanh());
        // 0.5 x (1 + erf(x / sqrt 2)), erf values from a table.
        let gelu = [-0.045_500_3, -0.154_268_8, 0., 1.399_789_2];
        assert_close(&values(&run("Gelu", 20, vec![], &[&x])), &gelu, 1e-5);
        let tanh = |v: f32| 0.5 * v * (1. + ((2. / std::f32::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh());
        check("Gelu", 20, vec![string("approximate", "tanh")], &tanh);
        let slope = t(&[2, 1], &[0.5, 2.]);
        let y = run("PRelu", 16, vec![], &[&x, &slope]);
        assert_eq!(y.dims(), &[2, 4]);
        assert_close(&values(&y), &[-1., -0.25, 0., 1.5, -4., -1., 0., 1.5], 0.0);
    }

    #[test]
    fn legacy_broadcast_aligns_b_at_axis() {
        let a = t(&[2, 3], &[0., 1., 2., 3., 4., 5.]);
        let y = run("Add", 6, vec![int("broadcast", 1), int("axis", 0)], &[&a, &t(&[2], &[10., 20.])]);
        assert_close(&values(&y), &[10., 11., 12., 23., 24., 25.], 0.0);
        let y = run("Mul", 6, vec![int("broadcast", 1)], &[&a, &t(&[3], &[1., 0., 2.])]);
        assert_close(&values(&y), &[0., 0., 4., 3., 0., 10.], 0.0);
    }

    #[test]
    fn prelu_before_opset_7_runs_a_slope_along_channels() {
        let x = t(&[1, 2, 2], &[-1., 2., -3., 4.]);
        let slope = t(&[2], &[0.5, 0.25]);
        assert_close(&values(&run("PRelu", 6, vec![], &[&x, &slope])), &[-0.5, 2., -0.75, 4.], 0.0);
        // From opset 7 the same slope broadcasts numpy-style, along the last axis.
        assert_close(&values(&run("PRelu", 9, vec![], &[&x, &slope])), &[-0.5, 2., -1.5, 4.], 0.0);
    }

    #[test]
    fn bitwise_ops_keep_the_stored_width() {
        let a = Tensor::new(&[0b1100u8, 0xf0], &Device::Cpu).unwrap();
        let b = Tensor::new(&[0b1010u8], &Device::Cpu).unwrap();
        assert_eq!(ints_of(&run("BitwiseAnd", 18, vec![], &[&a, &b])), vec![0b1000, 0]);
        assert_eq!(ints_of(&run("BitwiseOr", 18, vec![], &[&a, &b])), vec![0b1110, 0xfa]);
        assert_eq!(ints_of(&run("BitwiseXor", 18, vec![], &[&a, &b])), vec![0b0110, 0xfa]);
        let y = run("BitwiseNot", 18, vec![], &[&a]);
        assert_eq!((y.dtype(), ints_of(&y)), (DType::U8, vec![0xf3, 0x0f]));
        assert_eq!(ints_of(&run("BitwiseNot", 18, vec![], &[&i64s(&[0, -6])])), vec![-1, 5]);
        assert!(build(&node("BitwiseNot", 1, vec![]), 18).run(&[Some(&t(&[1], &[1.]))]).is_err());
    }

    #[test]
    fn shrink_and_swish() {
        let x = t(&[5], &[-2., -0.5, 0., 0.5, 2.]);
        let y = run("Shrink", 9, vec![float("bias", 1.), float("lambd", 1.)], &[&x]);
        assert_close(&values(&y), &[-1., 0., 0., 0., 1.], 0.0);
        let want: Vec<f32> = [-2f32, -0.5, 0., 0.5, 2.].iter().map(|v| v / (1. + (-2. * v).exp())).collect();
        assert_close(&values(&run("Swish", 24, vec![float("alpha", 2.)], &[&x])), &want, 1e-6);
    }

    #[test]
    fn mod_follows_the_divisor_unless_fmod() {
        let a = i64s(&[-4, 7, 5, 0]);
        let b = i64s(&[3, -3, 0, 2]);
        assert_eq!(ints_of(&run("Mod", 13, vec![], &[&a, &b])), vec![2, -2, 0, 0]);
        assert_eq!(ints_of(&run("Mod", 13, vec![int("fmod", 1)], &[&a, &b])), vec![-1, 1, 0, 0]);
        let y = run("Mod", 13, vec![int("fmod", 1)], &[&t(&[2], &[-4.5, 7.]), &t(&[], &[2.])]);
        assert_close(&values(&y), &[-0.5, 1.], 0.0);
    }

    #[test]
    fn bit_shift_directions() {
        let x = Tensor::new(&[16u8, 4, 1], &Device::Cpu).unwrap();
        let s = Tensor::new(&[1u8, 2, 3], &Device::Cpu).unwrap();
        assert_eq!(ints_of(&run("BitShift", 11, vec![string("direction", "LEFT")], &[&x, &s])), vec![32, 16, 8]);
        assert_eq!(ints_of(&run("BitShift", 11, vec![string("direction", "RIGHT")], &[&x, &s])), vec![8, 1, 0]);
    }

    #[test]
    fn casts() {
        let x = t(&[4], &[-1.7, 0., 0.5, 300.]);
        let y = run("Cast", 13, vec![int("to", 7)], &[&x]);
        assert_eq!((y.dtype(), ints_of(&y)), (DType::I64, vec![-1, 0, 0, 300]));
        let y = run("Cast", 13, vec![int("to", 9)], &[&x]);
        assert_eq!((y.dtype(), ints_of(&y)), (DType::U8, vec![1, 0, 1, 1]));
        let y = run("Cast", 13, vec![int("to", 10)], &[&x]);
        assert_eq!(y.dtype(), DType::F16);
        let y = run("CastLike", 15, vec![], &[&i64s(&[3, -2]), &t(&[1], &[0.])]);
        assert_eq!(y.dtype(), DType::F32);
        assert_close(&values(&y), &[3., -2.], 0.0);
    }

    #[test]
    fn casts_to_low_bit_types_hold_what_the_type_holds() {
        // Expected values: onnx 1.22.0 `reference.ops.op_cast.cast_to(x, to, saturate)`.
        let x = t(&[4], &[0.3, 465., -1e6, 2.7]);
        let y = run("Cast", 19, vec![int("to", 17)], &[&x]); // FLOAT8E4M3FN, saturating
        assert_eq!(y.dtype(), DType::F32);
        assert_eq!(values(&y), [0.3125, 448., -448., 2.75]);
        let y = run("Cast", 19, vec![int("to", 17), int("saturate", 0)], &[&x]);
        assert!(values(&y)[1].is_nan() && values(&y)[2].is_nan());
        let y = run("Cast", 19, vec![int("to", 19), int("saturate", 0)], &[&x]); // FLOAT8E5M2
        assert_eq!(values(&y)[1..3], [448., f32::NEG_INFINITY]);
        let y = run("Cast", 24, vec![int("to", 24), string("round_mode", "down")], &[&x]); // E8M0
        assert_eq!(values(&y), [0.25, 256., 524_288., 2.]);
        let y = run("Cast", 21, vec![int("to", 22)], &[&t(&[3], &[-9., 8., 2.7])]); // INT4
        assert_eq!((y.dtype(), ints_of(&y)), (DType::I16, vec![7, -8, 2]));
        let y = run("Cast", 21, vec![int("to", 25)], &[&i64s(&[-1, 6])]); // UINT2
        assert_eq!((y.dtype(), ints_of(&y)), (DType::U8, vec![3, 2]));
    }

    #[test]
    fn bit_cast_reinterprets_the_onnx_bytes() {
        let y = run("BitCast", 26, vec![int("to", 6)], &[&t(&[2], &[1.0, -2.0])]);
        assert_eq!((y.dtype(), ints_of(&y)), (DType::I32, vec![0x3f80_0000, 0xc000_0000u32 as i32 as i64]));
        // int8 is stored as I16: -1 is the byte 0xff, uint8 255.
        let int8 = Tensor::new(&[-1i16, 5], &Device::Cpu).unwrap();
        assert_eq!(ints_of(&run("BitCast", 26, vec![int("to", 2)], &[&int8])), vec![255, 5]);
        // uint16 is stored as I32: 65535 is int16 -1.
        let uint16 = Tensor::new(&[65535i32, 7], &Device::Cpu).unwrap();
        assert_eq!(ints_of(&run("BitCast", 26, vec![int("to", 5)], &[&uint16])), vec![-1, 7]);
        let k = build(&node("BitCast", 1, vec![int("to", 7)]), 26);
        assert!(k.run(&[Some(&t(&[1], &[1.0]))]).is_err(), "float32 to int64 differs in width");
    }
}
