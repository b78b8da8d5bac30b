//! Elementwise unary ops (ONNX Relu, Sigmoid, Tanh, Exp, Log, Neg, Abs, Sqrt, Reciprocal, Floor,
//! Ceil, Erf, Gelu, Silu, Sin, Cos, Softplus, LeakyRelu, Elu, Clip, HardSigmoid, HardSwish) in
//! `unary.wgsl`. The op and its attributes are a uniform, so one pipeline serves all of them.

use super::{fit, launch, spread};
use crate::{Gpu, GpuError, GpuTensor};

/// Invocations per workgroup, one per element.
pub const WORKGROUP: u32 = 64;

pub(crate) fn source() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\n{}",
        include_str!("unary.wgsl")
    )
}

/// The op, with its ONNX attributes where it has some.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Neg,
    Abs,
    Sqrt,
    Reciprocal,
    Floor,
    Ceil,
    Erf,
    /// `x Φ(x)`, the exact (erf) form.
    Gelu,
    /// Gelu's tanh approximation (`approximate="tanh"`).
    GeluTanh,
    Silu,
    Sin,
    Cos,
    Softplus,
    /// `alpha`: the slope below 0 (ONNX default 0.01).
    LeakyRelu(f32),
    /// `alpha` (ONNX default 1).
    Elu(f32),
    /// `min`, `max`.
    Clip(f32, f32),
    /// `alpha`, `beta` (ONNX defaults 0.2, 0.5).
    HardSigmoid(f32, f32),
    HardSwish,
}

impl UnaryOp {
    /// The shader's op code and the two attributes.
    fn code(self) -> (u32, f32, f32) {
        match self {
            UnaryOp::Relu => (0, 0.0, 0.0),
            UnaryOp::Sigmoid => (1, 0.0, 0.0),
            UnaryOp::Tanh => (2, 0.0, 0.0),
            UnaryOp::Exp => (3, 0.0, 0.0),
            UnaryOp::Log => (4, 0.0, 0.0),
            UnaryOp::Neg => (5, 0.0, 0.0),
            UnaryOp::Abs => (6, 0.0, 0.0),
            UnaryOp::Sqrt => (7, 0.0, 0.0),
            UnaryOp::Reciprocal => (8, 0.0, 0.0),
            UnaryOp::Floor => (9, 0.0, 0.0),
            UnaryOp::Ceil => (10, 0.0, 0.0),
            UnaryOp::Erf => (11, 0.0, 0.0),
            UnaryOp::Gelu => (12, 0.0, 0.0),
            UnaryOp::GeluTanh => (13, 0.0, 0.0),
            UnaryOp::Silu => (14, 0.0, 0.0),
            UnaryOp::Sin => (15, 0.0, 0.0),
            UnaryOp::Cos => (16, 0.0, 0.0),
            UnaryOp::Softplus => (17, 0.0, 0.0),
            UnaryOp::LeakyRelu(alpha) => (18, alpha, 0.0),
            UnaryOp::Elu(alpha) => (19, alpha, 0.0),
            UnaryOp::Clip(min, max) => (20, min, max),
            UnaryOp::HardSigmoid(alpha, beta) => (21, alpha, beta),
            UnaryOp::HardSwish => (22, 0.0, 0.0),
        }
    }

    /// The same op on the CPU (in f64, rounded once), the reference the kernel is tested against.
    pub fn apply(self, x: f32) -> f32 {
        let x = f64::from(x);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let y = match self {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Erf => erf(x),
            UnaryOp::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            UnaryOp::GeluTanh => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryOp::Silu => x * sigmoid(x),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            UnaryOp::LeakyRelu(alpha) => {
                if x < 0.0 {
                    f64::from(alpha) * x
                } else {
                    x
                }
            }
            UnaryOp::Elu(alpha) => {
                if x < 0.0 {
                    f64::from(alpha) * x.exp_m1()
                } else {
                    x
                }
            }
            UnaryOp::Clip(min, max) => x.max(f64::from(min)).min(f64::from(max)),
            UnaryOp::HardSigmoid(alpha, beta) => {
                (f64::from(alpha) * x + f64::from(beta)).clamp(0.0, 1.0)
            }
            UnaryOp::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        };
        y as f32
    }
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7), the shader's formula.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    op: u32,
    len: u32,
    row: u32,
    pad: u32,
    alpha: f32,
    beta: f32,
    pad2: [u32; 2],
}

impl Gpu {
    /// `op(x)` elementwise; the output has `x`'s dims.
    pub async fn unary(&self, op: UnaryOp, x: &GpuTensor) -> Result<GpuTensor, GpuError> {
        const OP: &str = "unary";
        let len = x.len();
        let (groups_x, groups_y) = spread(self, OP, len.div_ceil(WORKGROUP as usize) as u64)?;
        let (code, alpha, beta) = op.code();
        let params = Params {
            op: code,
            len: fit(OP, len)?,
            row: groups_x * WORKGROUP,
            pad: 0,
            alpha,
            beta,
            pad2: [0; 2],
        };
        let out = GpuTensor::output(self, OP, x.dims().to_vec())?;
        if len == 0 {
            return Ok(out);
        }
        launch(
            self,
            OP,
            &self.kernels.unary,
            &[&x.buffer, &out.buffer],
            &params,
            (groups_x, groups_y),
        )?;
        Ok(out)
    }
}
