//! Comparing one computed tensor with its expected value: the tolerance rule, exact comparison
//! of non-float types, NaN handling, and the figures reported per output (max abs / max rel
//! difference, how many elements are out of tolerance, the first of them).

use std::fmt;

use candle_core::{DType, Tensor};

/// The element rule: `got` passes when |got − want| ≤ `rel`·|want|, or, for |want| < 1, when
/// |got − want| ≤ `abs`. Equal values (infinities included) and NaN against NaN always pass.
/// Only float outputs use it; every other dtype compares exactly. Half-precision outputs get at
/// least their own precision ([`Tolerance::for_dtype`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            rel: 1e-4,
            abs: 1e-4,
        }
    }
}

impl Tolerance {
    /// The tolerance for outputs of `dtype`: never tighter than one unit in the last place at
    /// 1.0 of a half-precision type (float16: 2⁻¹⁰ ≈ 9.8e-4, bfloat16: 2⁻⁷ ≈ 7.8e-3), where
    /// 1e-4 would only test the rounding of the last bit.
    pub fn for_dtype(self, dtype: DType) -> Tolerance {
        let floor = match dtype {
            DType::F16 => 2f64.powi(-10),
            DType::BF16 => 2f64.powi(-7),
            _ => 0.0,
        };
        Tolerance {
            rel: self.rel.max(floor),
            abs: self.abs.max(floor),
        }
    }

    pub fn accepts(&self, got: f64, want: f64) -> bool {
        if got == want || (got.is_nan() && want.is_nan()) {
            return true;
        }
        if got.is_infinite() || want.is_infinite() {
            return false; // Unequal: no tolerance reaches an infinity.
        }
        let d = (got - want).abs(); // NaN when exactly one side is NaN: never accepted
        d <= self.rel * want.abs() || (want.abs() < 1.0 && d <= self.abs)
    }
}

/// How a computed output differs from the expected one.
#[derive(Clone, Debug, PartialEq)]
pub enum Diff {
    DType { got: DType, want: DType },
    Shape { got: Vec<usize>, want: Vec<usize> },
    Values(ValueDiff),
}

/// Element-wise figures for two tensors of the same dtype and shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueDiff {
    /// True for non-float dtypes, which must match exactly.
    pub exact: bool,
    pub count: usize,
    /// Elements out of tolerance (or unequal, when exact).
    pub mismatched: usize,
    /// Largest |got − want| over elements where both are finite (0 when there are none).
    pub max_abs: f64,
    /// Largest |got − want| / |want| over elements where both are finite and want ≠ 0.
    pub max_rel: f64,
    /// The first element out of tolerance: (flat index, got, want).
    pub first_bad: Option<(usize, f64, f64)>,
}

impl Diff {
    pub fn passed(&self) -> bool {
        matches!(self, Diff::Values(v) if v.mismatched == 0)
    }

    /// The failure kind, for grouping: `dtype`, `shape` or `values`.
    pub fn kind(&self) -> &'static str {
        match self {
            Diff::DType { .. } => "dtype",
            Diff::Shape { .. } => "shape",
            Diff::Values(_) => "values",
        }
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diff::DType { got, want } => write!(f, "dtype {got:?}, expected {want:?}"),
            Diff::Shape { got, want } => write!(f, "shape {got:?}, expected {want:?}"),
            Diff::Values(v) => {
                write!(f, "max abs {:.3e}, max rel {:.3e}", v.max_abs, v.max_rel)?;
                if v.exact {
                    write!(f, " (exact)")?;
                }
                if let Some((i, got, want)) = v.first_bad {
                    write!(
                        f,
                        "; {} of {} elements {}, first at [{i}]: got {got}, expected {want}",
                        v.mismatched,
                        v.count,
                        if v.exact {
                            "differ"
                        } else {
                            "out of tolerance"
                        }
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Flat values of a tensor: integers (and bool, stored as u8) exactly, floats widened to f64.
enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
}

fn values(t: &Tensor) -> candle_core::Result<Values> {
    let flat = t.flatten_all()?;
    let ints = |v: Vec<i64>| Ok(Values::Int(v));
    let floats = |v: Vec<f64>| Ok(Values::Float(v));
    match t.dtype() {
        DType::U8 => ints(flat.to_vec1::<u8>()?.into_iter().map(i64::from).collect()),
        DType::U32 => ints(flat.to_vec1::<u32>()?.into_iter().map(i64::from).collect()),
        DType::I16 => ints(flat.to_vec1::<i16>()?.into_iter().map(i64::from).collect()),
        DType::I32 => ints(flat.to_vec1::<i32>()?.into_iter().map(i64::from).collect()),
        DType::I64 => ints(flat.to_vec1::<i64>()?),
        DType::F16 => floats(
            flat.to_vec1::<half::f16>()?
                .into_iter()
                .map(f64::from)
                .collect(),
        ),
        DType::BF16 => floats(
            flat.to_vec1::<half::bf16>()?
                .into_iter()
                .map(f64::from)
                .collect(),
        ),
        DType::F32 => floats(flat.to_vec1::<f32>()?.into_iter().map(f64::from).collect()),
        DType::F64 => floats(flat.to_vec1::<f64>()?),
        _ => floats(flat.to_dtype(DType::F64)?.to_vec1::<f64>()?),
    }
}

/// Compare `got` with `want`: dtypes, then shapes, then every element.
pub fn compare(got: &Tensor, want: &Tensor, tol: Tolerance) -> candle_core::Result<Diff> {
    if got.dtype() != want.dtype() {
        return Ok(Diff::DType {
            got: got.dtype(),
            want: want.dtype(),
        });
    }
    if got.dims() != want.dims() {
        return Ok(Diff::Shape {
            got: got.dims().to_vec(),
            want: want.dims().to_vec(),
        });
    }
    let mut diff = ValueDiff::default();
    let mut note = |i: usize, g: f64, w: f64, ok: bool| {
        diff.count += 1;
        if g.is_finite() && w.is_finite() {
            let d = (g - w).abs();
            diff.max_abs = diff.max_abs.max(d);
            if w != 0.0 {
                diff.max_rel = diff.max_rel.max(d / w.abs());
            }
        }
        if !ok {
            diff.mismatched += 1;
            diff.first_bad.get_or_insert((i, g, w));
        }
    };
    match (values(got)?, values(want)?) {
        (Values::Int(g), Values::Int(w)) => {
            for (i, (&g, &w)) in g.iter().zip(&w).enumerate() {
                note(i, g as f64, w as f64, g == w);
            }
            diff.exact = true;
        }
        (Values::Float(g), Values::Float(w)) => {
            let tol = tol.for_dtype(want.dtype());
            for (i, (&g, &w)) in g.iter().zip(&w).enumerate() {
                note(i, g, w, tol.accepts(g, w));
            }
        }
        _ => unreachable!("equal dtypes give the same kind of values"),
    }
    Ok(Diff::Values(diff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn f32s(v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), v.len(), &Device::Cpu).unwrap()
    }

    fn check(got: &[f32], want: &[f32]) -> Diff {
        compare(&f32s(got), &f32s(want), Tolerance::default()).unwrap()
    }

    #[test]
    fn small_values_get_an_absolute_tolerance() {
        let tol = Tolerance::default();
        assert!(tol.accepts(0.5 + 0.9e-4, 0.5));
        assert!(!tol.accepts(0.5 + 1.1e-4, 0.5));
        assert!(tol.accepts(1e-7, 0.0));
        assert!(tol.accepts(-0.99999 - 0.9e-4, -0.99999));
    }

    #[test]
    fn large_values_get_a_relative_tolerance() {
        let tol = Tolerance::default();
        assert!(tol.accepts(1000.09, 1000.0));
        assert!(!tol.accepts(1000.11, 1000.0));
        assert!(tol.accepts(-1000.09, -1000.0));
        // At 1 and above the absolute rule no longer applies on its own.
        let tight = Tolerance {
            rel: 1e-6,
            abs: 1e-2,
        };
        assert!(!tight.accepts(2.001, 2.0));
        assert!(tight.accepts(0.501, 0.5));
    }

    #[test]
    fn nan_equals_nan_and_nothing_else() {
        let tol = Tolerance::default();
        assert!(tol.accepts(f64::NAN, f64::NAN));
        assert!(!tol.accepts(f64::NAN, 0.0));
        assert!(!tol.accepts(0.0, f64::NAN));
        let d = check(&[1.0, f32::NAN, 3.0], &[1.0, f32::NAN, 3.0]);
        assert!(d.passed(), "{d}");
        let d = check(&[1.0, f32::NAN], &[1.0, 2.0]);
        assert!(!d.passed());
        match d {
            Diff::Values(v) => {
                assert_eq!((v.mismatched, v.count), (1, 2));
                assert_eq!(v.max_abs, 0.0, "NaN does not poison the max");
                assert!(matches!(v.first_bad, Some((1, g, w)) if g.is_nan() && w == 2.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn infinities_must_match_exactly() {
        let tol = Tolerance::default();
        assert!(tol.accepts(f64::INFINITY, f64::INFINITY));
        assert!(!tol.accepts(f64::NEG_INFINITY, f64::INFINITY));
        assert!(!tol.accepts(f64::INFINITY, 3e38));
        assert!(!tol.accepts(3e38, f64::INFINITY));
    }

    #[test]
    fn reports_max_abs_and_max_rel() {
        let d = check(&[1.0, 2.0, 0.00005, 4.0002], &[1.0, 2.0, 0.0, 4.0]);
        let Diff::Values(v) = &d else { panic!("{d:?}") };
        assert!(d.passed(), "{d}");
        assert!((v.max_abs - 0.0002).abs() < 1e-6, "{v:?}");
        assert!((v.max_rel - 0.00005).abs() < 1e-6, "{v:?}; want ≠ 0 only");
        assert_eq!(v.count, 4);
        assert!(!v.exact);
    }

    #[test]
    fn a_value_out_of_tolerance_fails_naming_the_first() {
        let d = check(&[1.0, 2.5, 3.0, 9.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!(!d.passed());
        let Diff::Values(v) = &d else { panic!("{d:?}") };
        assert_eq!(v.mismatched, 2);
        assert_eq!(v.first_bad, Some((1, 2.5, 2.0)));
        assert!(
            d.to_string()
                .contains("2 of 4 elements out of tolerance, first at [1]"),
            "{d}"
        );
    }

    #[test]
    fn integers_and_bools_compare_exactly() {
        let dev = &Device::Cpu;
        let a = Tensor::new(&[1i64, 2, 1 << 40], dev).unwrap();
        let b = Tensor::new(&[1i64, 2, (1 << 40) + 1], dev).unwrap();
        let d = compare(&a, &b, Tolerance { rel: 1.0, abs: 1.0 }).unwrap();
        assert!(!d.passed(), "a loose tolerance does not apply to integers");
        assert!(compare(&a, &a, Tolerance::default()).unwrap().passed());
        let t = Tensor::new(&[1u8, 0, 1], dev).unwrap();
        let f = Tensor::new(&[1u8, 1, 1], dev).unwrap();
        let d = compare(&t, &f, Tolerance::default()).unwrap();
        let Diff::Values(v) = &d else { panic!("{d:?}") };
        assert!(
            v.exact && v.mismatched == 1 && v.first_bad == Some((1, 0.0, 1.0)),
            "{v:?}"
        );
    }

    #[test]
    fn dtypes_must_match() {
        let dev = &Device::Cpu;
        let f = Tensor::new(&[1f32, 2.0], dev).unwrap();
        let d = compare(&f, &f.to_dtype(DType::F64).unwrap(), Tolerance::default()).unwrap();
        assert_eq!(
            d,
            Diff::DType {
                got: DType::F32,
                want: DType::F64
            }
        );
        let i = Tensor::new(&[1i64, 2], dev).unwrap();
        let d = compare(&i, &i.to_dtype(DType::I32).unwrap(), Tolerance::default()).unwrap();
        assert!(!d.passed());
        assert_eq!(d.kind(), "dtype");
    }

    #[test]
    fn shapes_must_match_even_with_equal_values() {
        let t = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let d = compare(
            &t.reshape((2, 3)).unwrap(),
            &t.reshape((3, 2)).unwrap(),
            Tolerance::default(),
        )
        .unwrap();
        assert_eq!(
            d,
            Diff::Shape {
                got: vec![2, 3],
                want: vec![3, 2]
            }
        );
        let d = compare(&t, &t.reshape((1, 6)).unwrap(), Tolerance::default()).unwrap();
        assert!(!d.passed(), "rank counts");
        let scalar = Tensor::new(1f32, &Device::Cpu).unwrap();
        let one = f32s(&[1.0]);
        assert!(!compare(&scalar, &one, Tolerance::default())
            .unwrap()
            .passed());
        assert!(compare(&scalar, &scalar, Tolerance::default())
            .unwrap()
            .passed());
    }

    #[test]
    fn empty_tensors_of_the_same_shape_pass() {
        let e = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(compare(&e, &e, Tolerance::default()).unwrap().passed());
    }

    #[test]
    fn half_precision_is_compared_at_its_own_precision() {
        let dev = &Device::Cpu;
        let half = |v: &[f32], dtype| Tensor::new(v, dev).unwrap().to_dtype(dtype).unwrap();
        // One float16 step above 0.5 and above 100: out of the f32 tolerance, within float16's.
        let (want, got) = ([0.5f32, 100.0], [0.5f32 + 2f32.powi(-11), 100.0625]);
        let d = compare(
            &half(&got, DType::F16),
            &half(&want, DType::F16),
            Tolerance::default(),
        )
        .unwrap();
        assert!(
            d.passed() && matches!(&d, Diff::Values(v) if !v.exact),
            "{d}"
        );
        assert!(!compare(&f32s(&got), &f32s(&want), Tolerance::default())
            .unwrap()
            .passed());
        // Two bfloat16 steps at 1.0 (2 × 2⁻⁷) are too many.
        let d = compare(
            &half(&[1.0 + 2.0 * 2f32.powi(-7)], DType::BF16),
            &half(&[1.0], DType::BF16),
            Tolerance::default(),
        );
        assert!(!d.unwrap().passed());
        assert_eq!(
            Tolerance::default().for_dtype(DType::F32),
            Tolerance::default()
        );
        assert_eq!(
            Tolerance { rel: 0.1, abs: 0.1 }.for_dtype(DType::F16).rel,
            0.1,
            "a looser one stays"
        );
    }
}
