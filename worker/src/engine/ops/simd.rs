//! Four f32 lanes, and the vector math built on them: `exp`, `sigmoid`, `erf`. On wasm32 with
//! `simd128` a [`V4`] is a `v128` and every method one instruction; elsewhere it is `[f32; 4]`
//! lane by lane (which native compilers vectorise too). Both compute the same operations in the
//! same order, without fused multiply-adds, so the native tests check the wasm arithmetic.
//!
//! Why: wasm has no `exp` instruction, so `f32::exp` is a scalar libm call per element, and
//! candle's float maps never vectorise it. These are polynomial approximations with range
//! reduction (Cephes' `expf`; `erf` fitted here, see [`erf`]) whose error stays within a few
//! ulp: well inside the engine's 1e-4 tolerance against onnxruntime.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    /// Four f32 lanes in a `v128`.
    #[derive(Clone, Copy)]
    pub struct V4(v128);

    impl V4 {
        #[inline(always)]
        pub fn splat(x: f32) -> V4 {
            V4(f32x4_splat(x))
        }
        /// The first four values of `s` (which must hold four).
        #[inline(always)]
        pub fn load(s: &[f32]) -> V4 {
            assert!(s.len() >= 4);
            // SAFETY: four f32 are in bounds (checked above); v128_load allows any alignment.
            V4(unsafe { v128_load(s.as_ptr() as *const v128) })
        }
        #[inline(always)]
        pub fn store(self, d: &mut [f32]) {
            assert!(d.len() >= 4);
            // SAFETY: as in `load`.
            unsafe { v128_store(d.as_mut_ptr() as *mut v128, self.0) }
        }
        /// Four values from `p`.
        ///
        /// # Safety
        /// `p..p+4` must be readable.
        #[inline(always)]
        pub unsafe fn load_ptr(p: *const f32) -> V4 {
            V4(v128_load(p as *const v128))
        }
        /// # Safety
        /// `p..p+4` must be writable.
        #[inline(always)]
        pub unsafe fn store_ptr(self, p: *mut f32) {
            v128_store(p as *mut v128, self.0)
        }
        #[inline(always)]
        pub fn add(self, o: V4) -> V4 {
            V4(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: V4) -> V4 {
            V4(f32x4_sub(self.0, o.0))
        }
        #[inline(always)]
        pub fn mul(self, o: V4) -> V4 {
            V4(f32x4_mul(self.0, o.0))
        }
        #[inline(always)]
        pub fn div(self, o: V4) -> V4 {
            V4(f32x4_div(self.0, o.0))
        }
        /// The smaller lane; NaN if either is.
        #[inline(always)]
        pub fn min(self, o: V4) -> V4 {
            V4(f32x4_min(self.0, o.0))
        }
        /// The larger lane; NaN if either is.
        #[inline(always)]
        pub fn max(self, o: V4) -> V4 {
            V4(f32x4_max(self.0, o.0))
        }
        #[inline(always)]
        pub fn floor(self) -> V4 {
            V4(f32x4_floor(self.0))
        }
        #[inline(always)]
        pub fn abs(self) -> V4 {
            V4(f32x4_abs(self.0))
        }
        /// Per lane: `a` where `self < o`, else `b`.
        #[inline(always)]
        pub fn lt_select(self, o: V4, a: V4, b: V4) -> V4 {
            V4(v128_bitselect(a.0, b.0, f32x4_lt(self.0, o.0)))
        }
        /// `self` with the sign bit of `s`.
        #[inline(always)]
        pub fn copysign(self, s: V4) -> V4 {
            let sign = u32x4_splat(0x8000_0000);
            V4(v128_or(v128_andnot(self.0, sign), v128_and(s.0, sign)))
        }
        /// 2^n for whole-valued lanes `n` in [-126, 127].
        #[inline(always)]
        pub fn pow2i(self) -> V4 {
            let n = i32x4_trunc_sat_f32x4(self.0);
            V4(i32x4_shl(i32x4_add(n, i32x4_splat(127)), 23))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    /// Four f32 lanes (the portable stand-in for wasm's `v128`).
    #[derive(Clone, Copy)]
    pub struct V4([f32; 4]);

    impl V4 {
        #[inline(always)]
        fn each(self, f: impl Fn(f32) -> f32) -> V4 {
            V4(self.0.map(f))
        }
        #[inline(always)]
        fn with(self, o: V4, f: impl Fn(f32, f32) -> f32) -> V4 {
            V4([f(self.0[0], o.0[0]), f(self.0[1], o.0[1]), f(self.0[2], o.0[2]), f(self.0[3], o.0[3])])
        }
        #[inline(always)]
        pub fn splat(x: f32) -> V4 {
            V4([x; 4])
        }
        #[inline(always)]
        pub fn load(s: &[f32]) -> V4 {
            V4([s[0], s[1], s[2], s[3]])
        }
        #[inline(always)]
        pub fn store(self, d: &mut [f32]) {
            d[..4].copy_from_slice(&self.0);
        }
        /// # Safety
        /// `p..p+4` must be readable.
        #[inline(always)]
        pub unsafe fn load_ptr(p: *const f32) -> V4 {
            V4([*p, *p.add(1), *p.add(2), *p.add(3)])
        }
        /// # Safety
        /// `p..p+4` must be writable.
        #[inline(always)]
        pub unsafe fn store_ptr(self, p: *mut f32) {
            for (i, v) in self.0.iter().enumerate() {
                *p.add(i) = *v;
            }
        }
        #[inline(always)]
        pub fn add(self, o: V4) -> V4 {
            self.with(o, |a, b| a + b)
        }
        #[inline(always)]
        pub fn sub(self, o: V4) -> V4 {
            self.with(o, |a, b| a - b)
        }
        #[inline(always)]
        pub fn mul(self, o: V4) -> V4 {
            self.with(o, |a, b| a * b)
        }
        #[inline(always)]
        pub fn div(self, o: V4) -> V4 {
            self.with(o, |a, b| a / b)
        }
        /// As wasm's `f32x4.min`: NaN if either lane is.
        #[inline(always)]
        pub fn min(self, o: V4) -> V4 {
            self.with(o, |a, b| if a.is_nan() || b.is_nan() { f32::NAN } else { a.min(b) })
        }
        #[inline(always)]
        pub fn max(self, o: V4) -> V4 {
            self.with(o, |a, b| if a.is_nan() || b.is_nan() { f32::NAN } else { a.max(b) })
        }
        #[inline(always)]
        pub fn floor(self) -> V4 {
            self.each(f32::floor)
        }
        #[inline(always)]
        pub fn abs(self) -> V4 {
            self.each(f32::abs)
        }
        #[inline(always)]
        pub fn lt_select(self, o: V4, a: V4, b: V4) -> V4 {
            V4(std::array::from_fn(|i| if self.0[i] < o.0[i] { a.0[i] } else { b.0[i] }))
        }
        #[inline(always)]
        pub fn copysign(self, s: V4) -> V4 {
            self.with(s, f32::copysign)
        }
        #[inline(always)]
        pub fn pow2i(self) -> V4 {
            // `as` saturates and maps NaN to 0, as i32x4.trunc_sat_f32x4_s does.
            self.each(|n| f32::from_bits(((n as i32).wrapping_add(127) as u32) << 23))
        }
    }
}

pub use imp::V4;

/// `f` on every 4 values of `src` into `dst` (same length); a ragged tail goes through `f`
/// zero-padded.
#[inline(always)]
pub fn map(src: &[f32], dst: &mut [f32], f: impl Fn(V4) -> V4) {
    debug_assert_eq!(src.len(), dst.len());
    let mut s = src.chunks_exact(4);
    let mut d = dst.chunks_exact_mut(4);
    for (s, d) in (&mut s).zip(&mut d) {
        f(V4::load(s)).store(d);
    }
    let (s, d) = (s.remainder(), d.into_remainder());
    if !s.is_empty() {
        let mut buf = [0f32; 4];
        buf[..s.len()].copy_from_slice(s);
        f(V4::load(&buf)).store(&mut buf);
        d.copy_from_slice(&buf[..d.len()]);
    }
}

/// `f` on 4 values at a time, in place.
#[inline(always)]
pub fn map_in_place(xs: &mut [f32], f: impl Fn(V4) -> V4) {
    let mut c = xs.chunks_exact_mut(4);
    for d in &mut c {
        f(V4::load(d)).store(d);
    }
    let d = c.into_remainder();
    if !d.is_empty() {
        let mut buf = [0f32; 4];
        buf[..d.len()].copy_from_slice(d);
        f(V4::load(&buf)).store(&mut buf);
        let n = d.len();
        d.copy_from_slice(&buf[..n]);
    }
}

#[inline(always)]
fn poly(x: V4, c: &[f32]) -> V4 {
    let mut r = V4::splat(c[c.len() - 1]);
    for &k in c[..c.len() - 1].iter().rev() {
        r = r.mul(x).add(V4::splat(k));
    }
    r
}

/// e^x (Cephes' `expf`: x = n·ln2 + r, |r| ≤ ln2/2, a degree-7 polynomial for e^r): within 2
/// ulp of the true value for x in [-87.3, 88.3] (subnormal results below that, 0 under -104);
/// above 88.38, about 2.4e38 rather than infinity. NaN stays NaN.
// Fitted coefficients, written to the digits the fit gave (1.128… is not 2/√π rounded).
#[allow(clippy::excessive_precision, clippy::approx_constant)]
#[inline(always)]
pub fn exp(x: V4) -> V4 {
    let x = x.max(V4::splat(-103.97)).min(V4::splat(88.376_26));
    let n = x.mul(V4::splat(std::f32::consts::LOG2_E)).add(V4::splat(0.5)).floor();
    // ln2 in two parts, so that n·ln2 is exact in the first.
    let r = x.sub(n.mul(V4::splat(0.693_359_4))).sub(n.mul(V4::splat(-2.121_944_4e-4)));
    let p = poly(r, &[5.000_000_1e-1, 1.666_666_5e-1, 4.166_579_6e-2, 8.333_452e-3, 1.398_2e-3, 1.987_569_1e-4]);
    let p = p.mul(r.mul(r)).add(r).add(V4::splat(1.0));
    // 2^n in two factors: n runs from -150 to 128, each half stays a normal float.
    let half = n.mul(V4::splat(0.5)).floor();
    p.mul(half.pow2i()).mul(n.sub(half).pow2i())
}

/// The logistic function 1 / (1 + e^-x), within 2.1e-7 (absolute) of it: 0.5 + x·P(x²)/Q(x²)
/// on [-18, 18] (the odd rational fit onnxruntime's MLAS uses for its logistic), clamped to
/// [0, 1]; 0 below -18, 1 above 18 (to within rounding). About half the work of going through [`exp`] and a division.
// Fitted coefficients, written to the digits the fit gave (1.128… is not 2/√π rounded).
#[allow(clippy::excessive_precision, clippy::approx_constant)]
#[inline(always)]
pub fn sigmoid(x: V4) -> V4 {
    const P: [f32; 5] = [2.482_879_5e-1, 8.513_771e-3, 6.085_748_6e-5, 1.156_273_2e-7, 4.370_31e-11];
    const Q: [f32; 6] = [9.931_519e-1, 1.168_176_6e-1, 1.701_988_2e-3, 6.291_068e-6, 5.761_021_4e-9, 6.102_474e-13];
    let (lo, zero) = (V4::splat(-18.0), V4::splat(0.0));
    let c = x.max(lo).min(V4::splat(18.0));
    let c2 = c.mul(c);
    let y = c.mul(poly(c2, &P)).div(poly(c2, &Q)).add(V4::splat(0.5));
    // Exactly 0 below the range, so that x·sigmoid(x) (SiLU) stays 0 for very negative x.
    x.lt_select(lo, zero, y.max(zero).min(V4::splat(1.0)))
}

/// x · sigmoid(x) (SiLU, Swish with β = 1).
#[inline(always)]
pub fn silu(x: V4) -> V4 {
    x.mul(sigmoid(x))
}

/// erf(x), within 1.4e-7 of the true value: x·P(x²) below 0.921875 (relative error 1.5e-8),
/// 1 − e^Q(|x|) up to 3.925 (Q fitted to ln erfc, 8.4e-9), 1 beyond, sign restored. The
/// coefficients are near-minimax fits (Lawson's weighted least squares) against f64's erf.
// Fitted coefficients, written to the digits the fit gave (1.128… is not 2/√π rounded).
#[allow(clippy::excessive_precision, clippy::approx_constant)]
#[inline(always)]
pub fn erf(x: V4) -> V4 {
    const SMALL: [f32; 6] = [1.128_379_1, -0.376_125_07, 0.112_819_27, -0.026_770_223, 0.004_997_988_7, -0.000_601_333_04];
    const BIG: [f32; 9] = [
        0.000_307_204_38, -1.130_185_6, -0.631_899_7, -0.110_018_216, 0.026_390_219, -0.004_750_192_2,
        0.000_595_110_3, -4.589_345e-5, 1.630_643_2e-6,
    ];
    let a = x.abs();
    let small = a.mul(poly(a.mul(a), &SMALL));
    let big = V4::splat(1.0).sub(exp(poly(a.min(V4::splat(3.925)), &BIG)));
    let y = a.lt_select(V4::splat(0.921_875), small, big);
    // exp(Q(3.925)) is below half an ulp of 1: big is exactly 1 from there on.
    y.copysign(x)
}

/// GELU with erf, as exporters spell it: x/√2 → erf → +1 → ·x → ·0.5, in that order.
#[inline(always)]
pub fn gelu(x: V4) -> V4 {
    let e = erf(x.div(V4::splat(std::f32::consts::SQRT_2)));
    x.mul(e.add(V4::splat(1.0))).mul(V4::splat(0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One lane through a vector function.
    fn one(x: f32, f: impl Fn(V4) -> V4) -> f32 {
        let mut out = [0f32; 4];
        f(V4::splat(x)).store(&mut out);
        out[0]
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (one(x, exp), (x as f64).exp());
            let rel = ((got as f64 - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}) = {got}, want {want} (rel {rel:e})");
            x += 0.0137;
        }
        assert_eq!(one(0.0, exp), 1.0);
        assert!(one(-200.0, exp).to_bits() <= 1, "0 or the least subnormal");
        assert!((one(-90.0, exp) as f64 / (-90f64).exp() - 1.0).abs() < 1e-4, "subnormal");
        assert!(one(100.0, exp) > 1e38);
        assert!(one(f32::NAN, exp).is_nan());
    }

    #[test]
    fn erf_is_within_1_5e_7() {
        let mut x = -6.0f32;
        while x < 6.0 {
            let got = one(x, erf);
            let want = super::super::fast::erf(x);
            assert!((got - want).abs() < 2.5e-7, "erf({x}) = {got}, want {want}");
            x += 0.00173;
        }
        // Relative accuracy near 0, and odd symmetry.
        for x in [1e-6f32, 1e-3, 0.1] {
            let want = x as f64 * 2.0 / std::f64::consts::PI.sqrt();
            assert!(((one(x, erf) as f64 - want) / want).abs() < 1e-6 + (x as f64).powi(2));
            assert_eq!(one(-x, erf), -one(x, erf));
        }
        assert_eq!(one(10.0, erf), 1.0);
        assert!(one(f32::NAN, erf).is_nan());
    }

    #[test]
    fn sigmoid_saturates_cleanly() {
        assert_eq!(one(0.0, sigmoid), 0.5);
        assert_eq!(one(100.0, sigmoid), 1.0);
        assert_eq!(one(-100.0, sigmoid), 0.0);
        let mut x = -30.0f32;
        while x < 30.0 {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((one(x, sigmoid) as f64 - want).abs() < 2.5e-7, "sigmoid({x})");
            x += 0.0113;
        }
        assert!(one(f32::NAN, sigmoid).is_nan());
    }

    #[test]
    fn maps_handle_ragged_tails() {
        let src: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let mut dst = vec![0.0; 11];
        map(&src, &mut dst, |v| v.mul(V4::splat(2.0)));
        assert_eq!(dst, src.iter().map(|v| v * 2.0).collect::<Vec<_>>());
        map_in_place(&mut dst, |v| v.add(V4::splat(1.0)));
        assert_eq!(dst[10], 21.0);
    }
}
