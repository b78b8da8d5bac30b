//! Recurrent layers. Spec: RNN, GRU and LSTM (opsets 7 and 14; 14 adds `layout`): directions
//! forward / reverse / bidirectional, `sequence_lens` (steps past a sequence's length leave the
//! state alone and output zeros; reverse runs over each sequence's own steps), initial states,
//! `activations` with `activation_alpha` / `activation_beta`, `clip`; GRU
//! `linear_before_reset`; LSTM peepholes `P` and `input_forget`.
//!
//! One driver ([`Recurrent::run`]) owns what the three share: the input projection of every
//! step in one matmul, the direction and time loops, masking and reversal, and the outputs; a
//! cell ([`Cell`]) is only the per-step update of the state.

use candle_core::{Tensor, D};

use super::{input, Kernel, NodeCtx};
use crate::error::Result;

type R<T> = candle_core::Result<T>;

/// An activation named in `activations`, with its alpha / beta.
#[derive(Clone, Copy, Debug)]
enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Softsign,
    Softplus,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
}

impl Act {
    fn apply(self, x: &Tensor) -> R<Tensor> {
        match self {
            Act::Relu => x.relu(),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => sigmoid(x),
            Act::Softsign => x.broadcast_div(&(x.abs()? + 1.)?),
            Act::Softplus => (x.exp()? + 1.)?.log(),
            Act::Affine(a, b) => x.affine(a, b),
            Act::LeakyRelu(a) => x.maximum(&x.affine(a, 0.)?),
            Act::ThresholdedRelu(a) => x.mul(&x.gt(a)?.to_dtype(x.dtype())?),
            Act::ScaledTanh(a, b) => x.affine(b, 0.)?.tanh()?.affine(a, 0.),
            Act::HardSigmoid(a, b) => x.affine(a, b)?.clamp(0., 1.),
            Act::Elu(a) => x.elu(a),
        }
    }
}

/// `1 / (1 + e^-x)`, from basic ops so that every float dtype works.
fn sigmoid(x: &Tensor) -> R<Tensor> {
    (x.neg()?.exp()? + 1.)?.recip()
}

/// `activations` for every direction, `defaults` (one direction's) when absent. Alphas and betas
/// are consumed in order by the activations that take them; missing ones take ONNX's defaults.
fn activations(ctx: &NodeCtx, defaults: &[&str], directions: usize) -> Result<Vec<Act>> {
    let names = ctx.strings("activations");
    let names: Vec<String> = if names.is_empty() {
        defaults.iter().cycle().take(defaults.len() * directions).map(|s| s.to_string()).collect()
    } else {
        names
    };
    let (alphas, betas) = (ctx.float_list("activation_alpha"), ctx.float_list("activation_beta"));
    let (mut alphas, mut betas) = (alphas.iter().map(|&v| v as f64), betas.iter().map(|&v| v as f64));
    let mut take = |default_alpha: f64, default_beta: Option<f64>| {
        let a = alphas.next().unwrap_or(default_alpha);
        (a, default_beta.map(|d| betas.next().unwrap_or(d)).unwrap_or(0.))
    };
    names
        .iter()
        .map(|name| {
            Ok(match name.to_ascii_lowercase().as_str() {
                "relu" => Act::Relu,
                "tanh" => Act::Tanh,
                "sigmoid" => Act::Sigmoid,
                "softsign" => Act::Softsign,
                "softplus" => Act::Softplus,
                "affine" => {
                    let (a, b) = take(1., Some(0.));
                    Act::Affine(a, b)
                }
                "leakyrelu" => Act::LeakyRelu(take(0.01, None).0),
                "thresholdedrelu" => Act::ThresholdedRelu(take(1., None).0),
                "scaledtanh" => {
                    let (a, b) = take(1., Some(1.));
                    Act::ScaledTanh(a, b)
                }
                "hardsigmoid" => {
                    let (a, b) = take(0.2, Some(0.5));
                    Act::HardSigmoid(a, b)
                }
                "elu" => Act::Elu(take(1., None).0),
                other => return Err(ctx.unsupported(&format!("activation {other}"))),
            })
        })
        .collect()
}

/// One direction's weights, as the cells use them.
struct Weights {
    /// Recurrence weights transposed: [hidden, gates * hidden].
    r_t: Tensor,
    /// Recurrence bias `Rb`: [gates * hidden] (zeros when `B` is absent).
    rb: Tensor,
    /// LSTM peepholes [3 * hidden] (i, o, f), if given.
    p: Option<Tensor>,
}

/// The per-step state update of one layer type.
#[derive(Clone, Copy)]
enum Cell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { input_forget: bool },
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }

    /// Number of state tensors: h, and c for LSTM.
    fn states(self) -> usize {
        if matches!(self, Cell::Lstm { .. }) {
            2
        } else {
            1
        }
    }

    /// New states from `xw` (this step's `X·Wᵀ + Wb`, [batch, gates * hidden]) and the old ones.
    fn step(self, xw: &Tensor, state: &[Tensor], w: &Weights, acts: &[Act], clip: Option<f64>) -> R<Vec<Tensor>> {
        let h = &state[0];
        let hidden = h.dim(D::Minus1)?;
        let clip = |t: Tensor| match clip {
            Some(c) => t.clamp(-c, c),
            None => Ok(t),
        };
        let part = |t: &Tensor, k: usize| t.narrow(1, k * hidden, hidden);
        match self {
            Cell::Rnn => {
                let pre = (xw + h.matmul(&w.r_t)?.broadcast_add(&w.rb)?)?;
                Ok(vec![acts[0].apply(&clip(pre)?)?])
            }
            Cell::Gru { linear_before_reset } => {
                let (f, g) = (acts[0], acts[1]);
                // z and r from the full recurrence; the candidate's recurrence depends on r.
                let hr = h.matmul(&w.r_t.narrow(1, 0, 2 * hidden)?)?.broadcast_add(&w.rb.narrow(0, 0, 2 * hidden)?)?;
                let z = f.apply(&clip((part(xw, 0)? + part(&hr, 0)?)?)?)?;
                let r = f.apply(&clip((part(xw, 1)? + part(&hr, 1)?)?)?)?;
                let (rh_t, rbh) = (w.r_t.narrow(1, 2 * hidden, hidden)?, w.rb.narrow(0, 2 * hidden, hidden)?);
                let rec = if linear_before_reset {
                    (&r * h.matmul(&rh_t)?.broadcast_add(&rbh)?)?
                } else {
                    (&r * h)?.matmul(&rh_t)?.broadcast_add(&rbh)?
                };
                let candidate = g.apply(&clip((part(xw, 2)? + rec)?)?)?;
                // (1 - z) ⊙ candidate + z ⊙ h
                Ok(vec![(&candidate + (&z * (h - &candidate)?)?)?])
            }
            Cell::Lstm { input_forget } => {
                let (f, g, hact) = (acts[0], acts[1], acts[2]);
                let c = &state[1];
                let pre = (xw + h.matmul(&w.r_t)?.broadcast_add(&w.rb)?)?;
                let peep = |k: usize, c: &Tensor, gate: Tensor| match &w.p {
                    Some(p) => gate + c.broadcast_mul(&p.narrow(0, k * hidden, hidden)?)?,
                    None => Ok(gate),
                };
                // Gate order i, o, f, c; peephole order i, o, f.
                let i = f.apply(&clip(peep(0, c, part(&pre, 0)?)?)?)?;
                let forget = if input_forget {
                    i.affine(-1., 1.)?
                } else {
                    f.apply(&clip(peep(2, c, part(&pre, 2)?)?)?)?
                };
                let candidate = g.apply(&clip(part(&pre, 3)?)?)?;
                let c_new = ((forget * c)? + (&i * candidate)?)?;
                let o = f.apply(&clip(peep(1, &c_new, part(&pre, 1)?)?)?)?;
                let h_new = (o * hact.apply(&c_new)?)?;
                Ok(vec![h_new, c_new])
            }
        }
    }
}

/// A recurrent layer's typed attributes.
struct Recurrent {
    cell: Cell,
    /// Per direction: whether it runs backwards in time.
    reverse: Vec<bool>,
    /// Activations, `per_direction` of them for each direction.
    acts: Vec<Act>,
    per_direction: usize,
    clip: Option<f64>,
    batch_first: bool,
}

impl Recurrent {
    fn from_ctx(ctx: &NodeCtx, cell: Cell, default_acts: &[&str]) -> Result<Recurrent> {
        let reverse = match ctx.string("direction", "forward").as_str() {
            "forward" => vec![false],
            "reverse" => vec![true],
            "bidirectional" => vec![false, true],
            other => return Err(ctx.unsupported(&format!("direction {other}"))),
        };
        let acts = activations(ctx, default_acts, reverse.len())?;
        if acts.len() != default_acts.len() * reverse.len() {
            return Err(ctx.unsupported(&format!("{} activations for {} directions", acts.len(), reverse.len())));
        }
        let clip = ctx.node.attribute.iter().any(|a| a.name == "clip").then(|| ctx.float("clip", 0.) as f64);
        Ok(Recurrent {
            cell,
            reverse,
            acts,
            per_direction: default_acts.len(),
            clip,
            batch_first: ctx.int("layout", 0) == 1,
        })
    }

    /// Inputs X, W, R, B, sequence_lens, initial_h, (LSTM: initial_c, P); outputs Y, Y_h (, Y_c).
    fn run(&self, xs: &[Option<&Tensor>]) -> R<Vec<Tensor>> {
        let x = input(xs, 0)?;
        let x = if self.batch_first { x.transpose(0, 1)?.contiguous()? } else { x.clone() };
        let (w, r) = (input(xs, 1)?, input(xs, 2)?);
        let (steps, batch, in_size) = x.dims3()?;
        let hidden = r.dim(2)?;
        let gh = self.cell.gates() * hidden;
        let (dtype, dev) = (x.dtype(), x.device().clone());
        let opt = |i: usize| xs.get(i).copied().flatten();
        let lens = opt(4).map(super::int_values).transpose()?;
        // Per step, [batch, 1]: 1 while the step is inside the sequence (None: all are).
        let masks = match &lens {
            Some(lens) => (0..steps)
                .map(|t| {
                    let m: Vec<f32> = lens.iter().map(|&l| f32::from(u8::from((t as i64) < l))).collect();
                    Tensor::from_vec(m, (batch, 1), &dev)?.to_dtype(dtype).map(Some)
                })
                .collect::<R<Vec<_>>>()?,
            None => vec![None; steps],
        };
        let initial = |i: usize, d: usize| match opt(i) {
            Some(s) => s.get(d),
            None => Tensor::zeros((batch, hidden), dtype, &dev),
        };

        let (mut ys, mut finals) = (Vec::new(), vec![Vec::new(); self.cell.states()]);
        for (d, &reverse) in self.reverse.iter().enumerate() {
            let bias = opt(3).map(|b| b.get(d)).transpose()?;
            let weights = Weights {
                r_t: r.get(d)?.t()?,
                rb: match &bias {
                    Some(b) => b.narrow(0, gh, gh)?,
                    None => Tensor::zeros(gh, dtype, &dev)?,
                },
                p: opt(7).filter(|_| self.cell.states() == 2).map(|p| p.get(d)).transpose()?,
            };
            let seq = if reverse { reverse_in_time(&x, lens.as_deref())? } else { x.clone() };
            let mut xw = seq.reshape((steps * batch, in_size))?.matmul(&w.get(d)?.t()?)?;
            if let Some(b) = &bias {
                xw = xw.broadcast_add(&b.narrow(0, 0, gh)?)?;
            }
            let xw = xw.reshape((steps, batch, gh))?;
            let acts = &self.acts[d * self.per_direction..(d + 1) * self.per_direction];
            let mut state: Vec<Tensor> =
                [5, 6].iter().take(self.cell.states()).map(|&i| initial(i, d)).collect::<R<_>>()?;
            let mut outs = Vec::with_capacity(steps);
            for (t, mask) in masks.iter().enumerate() {
                let new = self.cell.step(&xw.get(t)?, &state, &weights, acts, self.clip)?;
                match mask {
                    Some(m) => {
                        // Inside the sequence take the new state, past its end keep the old.
                        state = new
                            .iter()
                            .zip(&state)
                            .map(|(n, o)| o + (n - o)?.broadcast_mul(m)?)
                            .collect::<R<_>>()?;
                        outs.push(new[0].broadcast_mul(m)?);
                    }
                    None => {
                        outs.push(new[0].clone());
                        state = new;
                    }
                }
            }
            let y = Tensor::stack(&outs, 0)?;
            ys.push(if reverse { reverse_in_time(&y, lens.as_deref())? } else { y });
            for (f, s) in finals.iter_mut().zip(state) {
                f.push(s);
            }
        }
        // Y [steps, directions, batch, hidden]; Y_h, Y_c [directions, batch, hidden].
        let y = Tensor::stack(&ys, 1)?;
        let finals = finals.iter().map(|f| Tensor::stack(f, 0)).collect::<R<Vec<_>>>()?;
        if self.batch_first {
            let y = y.permute((2, 0, 1, 3))?.contiguous()?;
            let finals = finals.iter().map(|f| f.transpose(0, 1)?.contiguous());
            std::iter::once(Ok(y)).chain(finals).collect()
        } else {
            Ok(std::iter::once(y).chain(finals).collect())
        }
    }
}

/// `x` [steps, batch, …] with each batch entry's first `lens[b]` steps reversed (all steps
/// when `lens` is absent); the rest stay in place. Its own inverse.
fn reverse_in_time(x: &Tensor, lens: Option<&[i64]>) -> R<Tensor> {
    let (steps, batch) = (x.dim(0)?, x.dim(1)?);
    let Some(lens) = lens else {
        let idx: Vec<u32> = (0..steps as u32).rev().collect();
        return x.index_select(&Tensor::new(idx, x.device())?, 0);
    };
    let mut idx = Vec::with_capacity(steps * batch);
    for t in 0..steps as i64 {
        for &l in lens {
            let l = l.clamp(0, steps as i64);
            idx.push(if t < l { l - 1 - t } else { t });
        }
    }
    let mut shape = vec![steps, batch];
    shape.resize(x.rank(), 1);
    let idx = Tensor::from_vec(idx, shape, x.device())?.broadcast_as(x.dims())?.contiguous()?;
    x.contiguous()?.gather(&idx, 0)
}

fn layer(ctx: &NodeCtx, cell: Cell, default_acts: &[&str]) -> Result<Box<dyn Kernel>> {
    let layer = Recurrent::from_ctx(ctx, cell, default_acts)?;
    Ok(Box::new(move |xs: &[Option<&Tensor>]| layer.run(xs)))
}

pub fn rnn(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    layer(ctx, Cell::Rnn, &["Tanh"])
}

pub fn gru(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    layer(ctx, Cell::Gru { linear_before_reset: ctx.int("linear_before_reset", 0) != 0 }, &["Sigmoid", "Tanh"])
}

pub fn lstm(ctx: &NodeCtx) -> Result<Box<dyn Kernel>> {
    layer(ctx, Cell::Lstm { input_forget: ctx.int("input_forget", 0) != 0 }, &["Sigmoid", "Tanh", "Tanh"])
}

#[cfg(test)]
mod tests {
    use candle_onnx::onnx::AttributeProto;

    use super::super::test_util::{assert_close, build, node, string, t, values};

    fn sigmoid(x: f32) -> f32 {
        1. / (1. + (-x).exp())
    }

    #[test]
    fn one_lstm_step_matches_a_hand_computation() {
        // hidden 1, input 1, one step, batch 1: W = [wi, wo, wf, wc], R likewise, bias on Wb.
        let (x, h0, c0) = (0.5f32, 0.2f32, -0.3f32);
        let w = [0.1f32, 0.2, 0.3, 0.4];
        let r = [0.5f32, -0.6, 0.7, -0.8];
        let wb = [0.01f32, 0.02, 0.03, 0.04];
        let pre = |k: usize| x * w[k] + h0 * r[k] + wb[k];
        let (i, o, f, g) = (sigmoid(pre(0)), sigmoid(pre(1)), sigmoid(pre(2)), pre(3).tanh());
        let c = f * c0 + i * g;
        let h = o * c.tanh();

        let mut n = node("LSTM", 7, vec![]);
        n.output = vec!["y".into(), "y_h".into(), "y_c".into()];
        let kernel = build(&n, 14);
        let mut b = wb.to_vec();
        b.extend([0f32; 4]);
        let (xt, wt, rt, bt) = (t(&[1, 1, 1], &[x]), t(&[1, 4, 1], &w), t(&[1, 4, 1], &r), t(&[1, 8], &b));
        let (ht, ct) = (t(&[1, 1, 1], &[h0]), t(&[1, 1, 1], &[c0]));
        let out = kernel.run(&[Some(&xt), Some(&wt), Some(&rt), Some(&bt), None, Some(&ht), Some(&ct)]).unwrap();
        assert_eq!(out[0].dims(), &[1, 1, 1, 1]);
        assert_close(&values(&out[0]), &[h], 1e-6);
        assert_close(&values(&out[1]), &[h], 1e-6);
        assert_close(&values(&out[2]), &[c], 1e-6);
    }

    #[test]
    fn reverse_rnn_with_sequence_lengths_keeps_padding_zero() {
        // Identity-like RNN (Relu, W = 1, R = 1): h_t = relu(x_t + h_{t-1}), run backwards over
        // each sequence's own length. Batch 0 has length 3, batch 1 length 1.
        let relu = AttributeProto { name: "activations".into(), strings: vec![b"Relu".to_vec()], r#type: 8, ..Default::default() };
        let n = node("RNN", 5, vec![string("direction", "reverse"), relu]);
        let kernel = build(&n, 14);
        // X [3 steps, 2 batch, 1]
        let x = t(&[3, 2, 1], &[1., 10., 2., 20., 3., 30.]);
        let (w, r) = (t(&[1, 1, 1], &[1.]), t(&[1, 1, 1], &[1.]));
        let lens = candle_core::Tensor::new(&[3i32, 1], &candle_core::Device::Cpu).unwrap();
        let out = kernel.run(&[Some(&x), Some(&w), Some(&r), None, Some(&lens)]).unwrap();
        // batch 0 backwards: 3, 5, 6 at steps 2, 1, 0; batch 1: 10 at step 0, zeros after.
        assert_close(&values(&out[0]), &[6., 10., 5., 0., 3., 0.], 1e-6);
        assert_close(&values(&out[1]), &[6., 10.], 1e-6);
    }
}
