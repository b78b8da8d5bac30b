//! The ONNX element types narrower than a byte or than any candle float: float8 (E4M3FN,
//! E4M3FNUZ, E5M2, E5M2FNUZ), float4 (E2M1), the exponent-only FLOAT8E8M0, and the packed
//! integers INT4/UINT4/INT2/UINT2. This module owns their bit codecs and nothing else: how a
//! code decodes to a value, how a value rounds to a code (what Cast to the type does), and how
//! sub-byte codes are packed in raw data. `tensor` decides how the values are stored in candle
//! (float types as F32 holding exactly the representable values, integers widened to U8/I16).
//!
//! Semantics follow the ONNX spec's Cast tables and its reference implementation (ml_dtypes):
//! round to nearest, ties to even; `saturate` clamps overflow to the largest finite value,
//! otherwise overflow gives inf (E5M2) or NaN; the FNUZ formats have no −0 and one NaN, 0x80.
//! The four float8 formats and float4 share one table-driven codec ([`MiniFloat`]); the
//! `float8` crate in candle's tree covers only E4M3FN and E5M2, so it is not used.

use crate::engine::tensor::onnx_type;

/// Where a small float format keeps its non-finite values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Specials {
    /// IEEE-like: the all-ones exponent is ±inf (mantissa 0) or NaN (E5M2).
    Ieee,
    /// "FN": no infinities; only S.1111.111 is NaN (E4M3FN).
    NanAtAllOnes,
    /// "FNUZ": no infinities, no −0; the code of −0 (0x80) is the only NaN.
    NanAtNegZero,
    /// Every code is finite (E2M1); NaN converts to −0, as ml_dtypes does.
    None,
}

/// A sign + exponent + mantissa float format of at most 8 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiniFloat {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    specials: Specials,
}

pub const F8E4M3FN: MiniFloat = MiniFloat { exp_bits: 4, man_bits: 3, bias: 7, specials: Specials::NanAtAllOnes };
pub const F8E4M3FNUZ: MiniFloat = MiniFloat { exp_bits: 4, man_bits: 3, bias: 8, specials: Specials::NanAtNegZero };
pub const F8E5M2: MiniFloat = MiniFloat { exp_bits: 5, man_bits: 2, bias: 15, specials: Specials::Ieee };
pub const F8E5M2FNUZ: MiniFloat = MiniFloat { exp_bits: 5, man_bits: 2, bias: 16, specials: Specials::NanAtNegZero };
pub const F4E2M1: MiniFloat = MiniFloat { exp_bits: 2, man_bits: 1, bias: 1, specials: Specials::None };

impl MiniFloat {
    fn sign_bit(&self) -> u8 {
        1 << (self.exp_bits + self.man_bits)
    }

    /// The all-ones exponent field.
    fn exp_max(&self) -> u8 {
        (1 << self.exp_bits) - 1
    }

    /// The largest finite magnitude's code.
    fn max_code(&self) -> u8 {
        let all_ones = self.sign_bit() - 1;
        match self.specials {
            Specials::Ieee => (self.exp_max() << self.man_bits) - 1,
            Specials::NanAtAllOnes => all_ones - 1,
            Specials::NanAtNegZero | Specials::None => all_ones,
        }
    }

    fn nan_code(&self, negative: bool) -> u8 {
        let sign = if negative { self.sign_bit() } else { 0 };
        match self.specials {
            // The quiet NaN: top mantissa bit set.
            Specials::Ieee => sign | self.exp_max() << self.man_bits | 1 << (self.man_bits - 1),
            Specials::NanAtAllOnes => sign | (self.sign_bit() - 1),
            Specials::NanAtNegZero | Specials::None => self.sign_bit(),
        }
    }

    /// The code of an overflowing magnitude when not saturating: inf where the format has it,
    /// NaN otherwise (E2M1, having neither, saturates).
    fn overflow_code(&self, negative: bool) -> u8 {
        match self.specials {
            Specials::Ieee => (if negative { self.sign_bit() } else { 0 }) | self.exp_max() << self.man_bits,
            Specials::None => self.max_code() | if negative { self.sign_bit() } else { 0 },
            _ => self.nan_code(negative),
        }
    }

    /// The smallest normal exponent, 1 − bias.
    fn emin(&self) -> i32 {
        1 - self.bias
    }

    /// The value of a code (the low `1 + exp_bits + man_bits` bits are used).
    pub fn decode(&self, code: u8) -> f32 {
        let code = code & (self.sign_bit() << 1).wrapping_sub(1);
        let negative = code & self.sign_bit() != 0;
        let mag = code & (self.sign_bit() - 1);
        let (exp, man) = (mag >> self.man_bits, mag & ((1 << self.man_bits) - 1));
        let special = match self.specials {
            Specials::Ieee if exp == self.exp_max() => Some(if man == 0 { f32::INFINITY } else { f32::NAN }),
            Specials::NanAtAllOnes if mag == self.sign_bit() - 1 => Some(f32::NAN),
            Specials::NanAtNegZero if code == self.sign_bit() => Some(f32::NAN),
            _ => None,
        };
        let value = special.unwrap_or_else(|| {
            // Subnormals (exp 0) have no implicit 1 and the exponent of the smallest normals.
            let (int, e) = match exp {
                0 => (man as i32, self.emin()),
                _ => ((man | 1 << self.man_bits) as i32, exp as i32 - self.bias),
            };
            int as f32 * 2f32.powi(e - self.man_bits as i32)
        });
        if negative {
            -value
        } else {
            value
        }
    }

    /// The code of `x` rounded to nearest (ties to even). `saturate` clamps overflow to the
    /// largest finite value; without it overflow is [`Self::overflow_code`]. Every f32, f16
    /// and bf16 is exact in f64, so this rounds once whatever the source type.
    pub fn encode(&self, x: f64, saturate: bool) -> u8 {
        let negative = x.is_sign_negative();
        if x.is_nan() {
            return self.nan_code(negative);
        }
        let a = x.abs();
        let mag = if a.is_infinite() {
            u64::MAX
        } else {
            // With e = max(⌊log2 a⌋, emin), a / 2^(e − m) rounded is the significand (subnormals
            // included), and ((e − emin) << m) + that significand is the magnitude's code: a
            // significand that rounds up to 2^(m+1) carries into the exponent by the addition.
            let e = ((a.to_bits() >> 52) as i32 - 1023).max(self.emin());
            let m = self.man_bits as i32;
            let significand = (a * 2f64.powi(m - e)).round_ties_even() as u64;
            (((e - self.emin()) as u64) << m) + significand
        };
        if mag > self.max_code() as u64 {
            return if saturate || self.specials == Specials::None {
                self.max_code() | if negative { self.sign_bit() } else { 0 }
            } else {
                self.overflow_code(negative)
            };
        }
        let mag = mag as u8;
        match negative && !(mag == 0 && self.specials == Specials::NanAtNegZero) {
            true => mag | self.sign_bit(),
            false => mag,
        }
    }

    /// `x` as the format stores it: Cast to the format.
    pub fn round(&self, x: f64, saturate: bool) -> f32 {
        self.decode(self.encode(x, saturate))
    }
}

/// How Cast to FLOAT8E8M0 rounds a value between two powers of two (opset 24 `round_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E8m0Round {
    Up,
    Down,
    Nearest,
}

impl E8m0Round {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "up" => E8m0Round::Up,
            "down" => E8m0Round::Down,
            "nearest" => E8m0Round::Nearest,
            _ => return None,
        })
    }
}

/// FLOAT8E8M0: an unsigned power of two, 2^(code − 127); 0xFF is NaN and there is no zero.
pub mod e8m0 {
    use super::E8m0Round;

    pub fn decode(code: u8) -> f32 {
        match code {
            0xff => f32::NAN,
            // 2^-127 is an f32 subnormal: the top mantissa bit.
            0 => f32::from_bits(1 << 22),
            c => f32::from_bits((c as u32) << 23),
        }
    }

    /// The code of f32 `x`, as the ONNX reference (`numpy_helper.to_float8e8m0`) computes it
    /// from the bits: the sign is ignored, NaN and ±inf give 0xFF, and the exponent is rounded
    /// by the mantissa; saturation stops rounding up from 0xFE into 0xFF.
    pub fn encode(x: f32, saturate: bool, round: E8m0Round) -> u8 {
        let bits = x.to_bits();
        let exp = (bits >> 23) & 0xff;
        if exp == 0xff {
            return 0xff;
        }
        let up = match round {
            E8m0Round::Up => bits & 0x7f_ffff != 0,
            E8m0Round::Down => false,
            E8m0Round::Nearest => {
                let (guard, round_bit, sticky) = (bits & 0x40_0000 != 0, bits & 0x20_0000 != 0, bits & 0x1f_ffff != 0);
                guard && (round_bit || sticky || exp > 0)
            }
        };
        let up = up && !(saturate && exp == 0xfe);
        (exp + up as u32) as u8
    }

    pub fn round(x: f32, saturate: bool, round: E8m0Round) -> f32 {
        decode(encode(x, saturate, round))
    }
}

/// An ONNX element type this module codes, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowBit {
    Float(MiniFloat),
    E8m0,
    /// INT4/UINT4/INT2/UINT2: two's complement (signed) or plain bits, packed in raw data.
    Int { bits: u32, signed: bool },
}

impl LowBit {
    pub fn of_onnx(code: i32) -> Option<LowBit> {
        use onnx_type::*;
        Some(match code {
            FLOAT8E4M3FN => LowBit::Float(F8E4M3FN),
            FLOAT8E4M3FNUZ => LowBit::Float(F8E4M3FNUZ),
            FLOAT8E5M2 => LowBit::Float(F8E5M2),
            FLOAT8E5M2FNUZ => LowBit::Float(F8E5M2FNUZ),
            FLOAT4E2M1 => LowBit::Float(F4E2M1),
            FLOAT8E8M0 => LowBit::E8m0,
            UINT4 => LowBit::Int { bits: 4, signed: false },
            INT4 => LowBit::Int { bits: 4, signed: true },
            UINT2 => LowBit::Int { bits: 2, signed: false },
            INT2 => LowBit::Int { bits: 2, signed: true },
            _ => return None,
        })
    }

    /// Bits per element in raw data: sub-byte types are packed, first element in the low bits.
    pub fn bits(&self) -> usize {
        match self {
            LowBit::Float(f) => (1 + f.exp_bits + f.man_bits) as usize,
            LowBit::E8m0 => 8,
            LowBit::Int { bits, .. } => *bits as usize,
        }
    }

    /// Bytes that `numel` packed elements occupy (the last byte may be part padding).
    pub fn byte_len(&self, numel: usize) -> usize {
        (numel * self.bits()).div_ceil(8)
    }

    /// The first `numel` codes in packed raw data.
    pub fn codes(&self, raw: &[u8], numel: usize) -> Vec<u8> {
        let bits = self.bits();
        let per_byte = 8 / bits;
        let mask = ((1u16 << bits) - 1) as u8;
        (0..numel).map(|i| raw.get(i / per_byte).map_or(0, |b| b >> (i % per_byte * bits) & mask)).collect()
    }

    /// The integer value of an integer type's code (sign-extended when signed).
    pub fn int_of_code(&self, code: u8) -> i64 {
        match *self {
            LowBit::Int { bits, signed: true } => ((code << (8 - bits)) as i8 >> (8 - bits)) as i64,
            _ => code as i64,
        }
    }

    /// An integer cast to this integer type: the low bits kept, as ONNX casts between integers.
    pub fn wrap_int(&self, v: i64) -> i64 {
        self.int_of_code((v & ((1 << self.bits()) - 1)) as u8)
    }

    /// A float cast to this integer type, as the reference (ml_dtypes) does it: truncated toward
    /// zero, then wrapped; NaN, ±inf and magnitudes past i64 (multiples of 2^11) give 0.
    pub fn int_of_float(&self, x: f64) -> i64 {
        if x.is_finite() && x.abs() < 2f64.powi(63) {
            self.wrap_int(x.trunc() as i64)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs of the reference tables below.
    const XS: [f32; 14] = [
        0.3, -1.75, 0.000_976_562_5, 1e-9, -1e-9, 100.0, 300.0, 464.0, 465.0, 61440.0, 1e6,
        f32::INFINITY, f32::NEG_INFINITY, f32::NAN,
    ];

    /// Codes of `XS` (saturating, then not) from the ONNX reference, computed with onnx 1.22.0:
    /// `onnx.reference.ops.op_cast.cast_to(xs, TensorProto.<TYPE>, saturate).view(np.uint8)`.
    const REFERENCE: [(MiniFloat, [u8; 14], [u8; 14]); 4] = [
        (
            F8E4M3FN,
            [0x2a, 0xbe, 0x00, 0x00, 0x80, 0x6c, 0x79, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0xfe, 0x7f],
            [0x2a, 0xbe, 0x00, 0x00, 0x80, 0x6c, 0x79, 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0xff, 0x7f],
        ),
        (
            F8E4M3FNUZ,
            [0x32, 0xc6, 0x01, 0x00, 0x00, 0x74, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0xff, 0x80],
            [0x32, 0xc6, 0x01, 0x00, 0x00, 0x74, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80],
        ),
        (
            F8E5M2,
            [0x35, 0xbf, 0x14, 0x00, 0x80, 0x56, 0x5d, 0x5f, 0x5f, 0x7b, 0x7b, 0x7b, 0xfb, 0x7e],
            [0x35, 0xbf, 0x14, 0x00, 0x80, 0x56, 0x5d, 0x5f, 0x5f, 0x7c, 0x7c, 0x7c, 0xfc, 0x7e],
        ),
        (
            F8E5M2FNUZ,
            [0x39, 0xc3, 0x18, 0x00, 0x00, 0x5a, 0x61, 0x63, 0x63, 0x7f, 0x7f, 0x7f, 0xff, 0x80],
            [0x39, 0xc3, 0x18, 0x00, 0x00, 0x5a, 0x61, 0x63, 0x63, 0x80, 0x80, 0x80, 0x80, 0x80],
        ),
    ];

    #[test]
    fn float8_encodings_match_the_onnx_reference() {
        for (f, sat, nosat) in REFERENCE {
            let got: Vec<u8> = XS.iter().map(|&x| f.encode(x as f64, true)).collect();
            assert_eq!(got, sat, "{f:?} saturating");
            let got: Vec<u8> = XS.iter().map(|&x| f.encode(x as f64, false)).collect();
            assert_eq!(got, nosat, "{f:?} not saturating");
        }
    }

    #[test]
    fn float8_values_match_the_onnx_reference() {
        // `.astype(np.float32)` of the saturating casts above.
        let e4m3fn = [0.3125, -1.75, 0.0, 0.0, -0.0, 96.0, 288.0, 448.0, 448.0, 448.0, 448.0, 448.0, -448.0];
        let e5m2 =
            [0.3125, -1.75, 0.000_976_562_5, 0.0, -0.0, 96.0, 320.0, 448.0, 448.0, 57344.0, 57344.0, 57344.0, -57344.0];
        for (f, want) in [(F8E4M3FN, e4m3fn), (F8E5M2, e5m2)] {
            let got: Vec<f32> = XS.iter().map(|&x| f.round(x as f64, true)).collect();
            assert_eq!(&got[..13], &want, "{f:?}");
            let signs: Vec<bool> = got[..13].iter().map(|v| v.is_sign_negative()).collect();
            assert_eq!(signs, want.map(|v: f32| v.is_sign_negative()), "{f:?} signs");
            assert!(got[13].is_nan());
        }
        assert_eq!(F8E4M3FNUZ.decode(0x7f), 240.0);
        assert_eq!(F8E5M2FNUZ.decode(0x7f), 57344.0);
        assert_eq!(F8E5M2.decode(0xfc), f32::NEG_INFINITY);
        assert!(F8E4M3FNUZ.decode(0x80).is_nan() && F8E4M3FN.decode(0xff).is_nan());
    }

    #[test]
    fn every_float8_code_round_trips() {
        for f in [F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ] {
            for code in 0..=255u8 {
                let v = f.decode(code);
                let back = f.encode(v as f64, false);
                if v.is_nan() {
                    assert!(f.decode(back).is_nan(), "{f:?} {code:#x}");
                } else {
                    assert_eq!(back, code, "{f:?} {code:#x} = {v}");
                }
            }
        }
    }

    #[test]
    fn float4_matches_the_onnx_reference() {
        // cast_to([0.3, -1.75, 0.25, 0.75, 2.5, 5, 7, -1e9, nan], TensorProto.FLOAT4E2M1, True)
        // .view(np.uint8) with onnx 1.22.0: ties to even, overflow saturates, NaN becomes −0.
        let xs = [0.3, -1.75, 0.25, 0.75, 2.5, 5.0, 7.0, -1e9, f64::NAN];
        let want = [0x1, 0xc, 0x0, 0x2, 0x4, 0x6, 0x7, 0xf, 0x8];
        assert_eq!(xs.map(|x| F4E2M1.encode(x, false)), want);
        let all: Vec<f32> = (0..16).map(|c| F4E2M1.decode(c)).collect();
        assert_eq!(all, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]);
    }

    #[test]
    fn e8m0_matches_the_onnx_reference() {
        // cast_to(xs, TensorProto.FLOAT8E8M0, saturate, round_mode).view(np.uint8), onnx 1.22.0.
        let xs = [0.0, 0.124, 0.25, 0.375, 0.75, 1.5, 3.0, 1e-40, 3e38, f32::INFINITY, f32::NAN];
        let table = [
            (true, E8m0Round::Up, [0, 124, 125, 126, 127, 128, 129, 1, 254, 255, 255]),
            (true, E8m0Round::Down, [0, 123, 125, 125, 126, 127, 128, 0, 254, 255, 255]),
            (true, E8m0Round::Nearest, [0, 124, 125, 126, 127, 128, 129, 0, 254, 255, 255]),
            (false, E8m0Round::Up, [0, 124, 125, 126, 127, 128, 129, 1, 255, 255, 255]),
            (false, E8m0Round::Nearest, [0, 124, 125, 126, 127, 128, 129, 0, 255, 255, 255]),
        ];
        for (saturate, round, want) in table {
            assert_eq!(xs.map(|x| e8m0::encode(x, saturate, round)), want, "{saturate} {round:?}");
        }
        assert_eq!(e8m0::decode(0), 2f32.powi(-127));
        assert_eq!((e8m0::decode(127), e8m0::decode(254)), (1.0, 2f32.powi(127)));
        assert!(e8m0::decode(255).is_nan());
    }

    #[test]
    fn integers_wrap_like_the_onnx_reference() {
        // cast_to([-9, 8, 2.7, -2.7, 15.5, nan, inf] as float32, TensorProto.<TYPE>, True), 1.22.0.
        let xs = [-9.0, 8.0, 2.7, -2.7, 15.5, f64::NAN, f64::INFINITY];
        let table = [
            (onnx_type::INT4, [7, -8, 2, -2, -1, 0, 0]),
            (onnx_type::UINT4, [7, 8, 2, 14, 15, 0, 0]),
            (onnx_type::INT2, [-1, 0, -2, -2, -1, 0, 0]),
            (onnx_type::UINT2, [3, 0, 2, 2, 3, 0, 0]),
        ];
        for (code, want) in table {
            let t = LowBit::of_onnx(code).unwrap();
            assert_eq!(xs.map(|x| t.int_of_float(x)), want, "type {code}");
        }
        assert_eq!(LowBit::of_onnx(onnx_type::INT4).unwrap().wrap_int(200), -8);
    }

    #[test]
    fn sub_byte_codes_unpack_low_bits_first() {
        // numpy_helper.from_array(np.array([7, -8, -7, 1, 2], ml_dtypes.int4)).raw_data
        // == b"\x87\x19\x02" (onnx 1.22.0): five elements, the last byte half padding.
        let int4 = LowBit::of_onnx(onnx_type::INT4).unwrap();
        let codes = int4.codes(&[0x87, 0x19, 0x02], 5);
        assert_eq!(codes.iter().map(|&c| int4.int_of_code(c)).collect::<Vec<_>>(), [7, -8, -7, 1, 2]);
        assert_eq!(int4.byte_len(5), 3);
        let uint2 = LowBit::of_onnx(onnx_type::UINT2).unwrap();
        assert_eq!(uint2.codes(&[0b1110_0100, 0b01], 5), [0, 1, 2, 3, 1]);
        assert_eq!(uint2.byte_len(5), 2);
    }
}
