//! Tensor storage and conversions: ONNX `TensorProto` → candle, wire tensor ↔ candle, and
//! [`HostBuffer`], the typed allocation that the loader streams weight bytes into before it
//! becomes a candle tensor without another copy (`Tensor::from_vec` takes the Vec as storage).
//!
//! Element types candle lacks are stored in a wider candle dtype that holds every value exactly:
//! int8, int4, int2 → I16; uint16 → I32; uint64 → I64; uint4, uint2 → U8; the float8 formats,
//! float4 and float8e8m0 → F32 (decoded by [`crate::engine::lowbit`] when the tensor is read).

use std::mem::MaybeUninit;

use candle_core::{DType, Device, Tensor};
use candle_onnx::onnx::TensorProto;
use half::{bf16, f16};

use crate::engine::lowbit::{e8m0, LowBit};

use crate::error::{Result, WickError};

/// ONNX `TensorProto.DataType` codes this engine stores.
pub mod onnx_type {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;
    pub const BFLOAT16: i32 = 16;
    pub const FLOAT8E4M3FN: i32 = 17;
    pub const FLOAT8E4M3FNUZ: i32 = 18;
    pub const FLOAT8E5M2: i32 = 19;
    pub const FLOAT8E5M2FNUZ: i32 = 20;
    pub const UINT4: i32 = 21;
    pub const INT4: i32 = 22;
    pub const FLOAT4E2M1: i32 = 23;
    pub const FLOAT8E8M0: i32 = 24;
    pub const UINT2: i32 = 25;
    pub const INT2: i32 = 26;
}

/// The candle dtype that stores an ONNX element type. Bool is stored as u8; types candle lacks
/// are widened: int8/int4/int2 → i16, uint16 → i32, uint64 → i64 (values above i64::MAX wrap),
/// uint4/uint2 → u8, the float8 formats, float4 and float8e8m0 → f32.
pub fn dtype_of_onnx(code: i32) -> Result<DType> {
    use onnx_type::*;
    Ok(match code {
        FLOAT | FLOAT8E4M3FN | FLOAT8E4M3FNUZ | FLOAT8E5M2 | FLOAT8E5M2FNUZ | FLOAT4E2M1 | FLOAT8E8M0 => DType::F32,
        UINT8 | BOOL | UINT4 | UINT2 => DType::U8,
        INT8 | INT16 | INT4 | INT2 => DType::I16,
        UINT16 => DType::I32,
        UINT64 => DType::I64,
        INT32 => DType::I32,
        INT64 => DType::I64,
        FLOAT16 => DType::F16,
        DOUBLE => DType::F64,
        UINT32 => DType::U32,
        BFLOAT16 => DType::BF16,
        other => {
            return Err(WickError::invalid(format!("tensor element type {other} is not supported")))
        }
    })
}

/// The wire dtype for an ONNX element type, if the protocol has one.
pub fn wire_dtype_of_onnx(code: i32) -> Option<wick_shared::DType> {
    use onnx_type::*;
    use wick_shared::DType as W;
    Some(match code {
        FLOAT => W::Float32,
        FLOAT16 => W::Float16,
        INT8 => W::Int8,
        UINT8 => W::Uint8,
        INT32 => W::Int32,
        INT64 => W::Int64,
        BOOL => W::Bool,
        _ => return None,
    })
}

/// Whether an ONNX type's raw data differs from its stored dtype's bytes (it is widened or
/// decoded when the tensor is made).
fn is_widened(code: i32) -> bool {
    use onnx_type::*;
    matches!(code, INT8 | UINT16 | UINT64) || LowBit::of_onnx(code).is_some()
}

/// Bytes that `numel` elements of an ONNX type occupy in raw data (sub-byte types are packed).
fn raw_len(code: i32, numel: usize) -> Result<usize> {
    use onnx_type::*;
    Ok(match (code, LowBit::of_onnx(code)) {
        (_, Some(low)) => low.byte_len(numel),
        (INT8, _) => numel,
        (UINT16, _) => numel * 2,
        (UINT64, _) => numel * 8,
        (other, None) => numel * dtype_of_onnx(other)?.size_in_bytes(),
    })
}

/// A typed host allocation for one tensor: zero-initialised ([`HostBuffer::zeroed`]), or empty
/// with room for the tensor ([`HostBuffer::unfilled_for_onnx`]) for a writer that fills every
/// byte. The streaming loader takes the unfilled kind: wasm32's allocator (dlmalloc) clears a
/// `calloc` block even when it is fresh from `memory.grow`, so zeroing a weight would touch every
/// page of it before the copy does (measured: as long as the copy itself).
#[derive(Debug)]
pub enum HostBuffer {
    U8(Vec<u8>),
    U32(Vec<u32>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Raw bytes of an ONNX type candle lacks, widened or decoded when the tensor is made.
    Widened { onnx_type: i32, raw: Vec<u8> },
}

/// `$body` with `$v` bound to the buffer's Vec, whatever its element type.
macro_rules! with_vec {
    ($buffer:expr, $v:ident => $body:expr) => {
        match $buffer {
            HostBuffer::U8($v) => $body,
            HostBuffer::U32($v) => $body,
            HostBuffer::I16($v) => $body,
            HostBuffer::I32($v) => $body,
            HostBuffer::I64($v) => $body,
            HostBuffer::F16($v) => $body,
            HostBuffer::BF16($v) => $body,
            HostBuffer::F32($v) => $body,
            HostBuffer::F64($v) => $body,
            HostBuffer::Widened { raw: $v, .. } => $body,
        }
    };
}

impl HostBuffer {
    /// The allocation that receives an ONNX tensor's raw bytes.
    pub fn for_onnx(onnx_type: i32, numel: usize) -> Result<Self> {
        if is_widened(onnx_type) {
            Ok(HostBuffer::Widened { onnx_type, raw: vec![0; raw_len(onnx_type, numel)?] })
        } else {
            HostBuffer::zeroed(dtype_of_onnx(onnx_type)?, numel)
        }
    }

    /// Like [`HostBuffer::for_onnx`], but empty, with room for exactly the tensor's bytes, not
    /// zeroed: write them into [`HostBuffer::spare_bytes_mut`], then [`HostBuffer::assume_filled`].
    pub fn unfilled_for_onnx(onnx_type: i32, numel: usize) -> Result<Self> {
        if is_widened(onnx_type) {
            return Ok(HostBuffer::Widened { onnx_type, raw: Vec::with_capacity(raw_len(onnx_type, numel)?) });
        }
        let mut buffer = HostBuffer::zeroed(dtype_of_onnx(onnx_type)?, 0)?;
        with_vec!(&mut buffer, v => v.reserve_exact(numel));
        Ok(buffer)
    }

    /// The room past the buffer's contents, as bytes: where an unfilled buffer's bytes go.
    pub fn spare_bytes_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        fn spare<T: bytemuck::Pod>(v: &mut Vec<T>) -> &mut [MaybeUninit<u8>] {
            let spare = v.spare_capacity_mut();
            let len = std::mem::size_of_val(spare);
            // SAFETY: the Vec's spare capacity, borrowed mutably for as long as the result, seen
            // as bytes: MaybeUninit<u8> has alignment 1 and no validity requirement.
            unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast(), len) }
        }
        with_vec!(self, v => spare(v))
    }

    /// Takes the whole room as the buffer's contents.
    ///
    /// # Safety
    /// Every byte of [`HostBuffer::spare_bytes_mut`] has been written (any bit pattern is a
    /// valid element of these types).
    pub unsafe fn assume_filled(&mut self) {
        fn fill<T>(v: &mut Vec<T>) {
            // SAFETY: the caller wrote the spare capacity, so every element is initialised.
            unsafe { v.set_len(v.capacity()) }
        }
        with_vec!(self, v => fill(v))
    }

    pub fn zeroed(dtype: DType, numel: usize) -> Result<Self> {
        Ok(match dtype {
            DType::U8 => HostBuffer::U8(vec![0; numel]),
            DType::U32 => HostBuffer::U32(vec![0; numel]),
            DType::I16 => HostBuffer::I16(vec![0; numel]),
            DType::I32 => HostBuffer::I32(vec![0; numel]),
            DType::I64 => HostBuffer::I64(vec![0; numel]),
            DType::F16 => HostBuffer::F16(vec![f16::ZERO; numel]),
            DType::BF16 => HostBuffer::BF16(vec![bf16::ZERO; numel]),
            DType::F32 => HostBuffer::F32(vec![0.0; numel]),
            DType::F64 => HostBuffer::F64(vec![0.0; numel]),
            other => return Err(WickError::Internal(format!("no host buffer for {other:?}"))),
        })
    }

    /// The allocation viewed as little-endian bytes (wasm32 and x86 are little-endian).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            HostBuffer::U8(v) => v.as_mut_slice(),
            HostBuffer::U32(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::I16(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::I32(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::I64(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::F16(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::BF16(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::F32(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::F64(v) => bytemuck::cast_slice_mut(v),
            HostBuffer::Widened { raw, .. } => raw.as_mut_slice(),
        }
    }

    /// Hand the allocation to candle as the tensor's storage (moved, not copied).
    pub fn into_tensor(self, dims: &[usize]) -> Result<Tensor> {
        let dev = &Device::Cpu;
        let t = match self {
            HostBuffer::U8(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::U32(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::I16(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::I32(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::I64(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::F16(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::BF16(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::F32(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::F64(v) => Tensor::from_vec(v, dims, dev),
            HostBuffer::Widened { onnx_type, raw } => {
                use onnx_type::*;
                let numel: usize = dims.iter().product();
                match (onnx_type, LowBit::of_onnx(onnx_type)) {
                    (_, Some(low)) => low_bit_tensor(low, &raw, numel, dims),
                    (INT8, _) => Tensor::from_vec(raw.iter().map(|&b| b as i8 as i16).collect::<Vec<_>>(), dims, dev),
                    (UINT16, _) => {
                        let v: Vec<i32> = raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as i32).collect();
                        Tensor::from_vec(v, dims, dev)
                    }
                    _ => {
                        let v: Vec<i64> = raw
                            .chunks_exact(8)
                            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as i64)
                            .collect();
                        Tensor::from_vec(v, dims, dev)
                    }
                }
            }
        };
        t.map_err(|e| WickError::Internal(format!("tensor from buffer: {e}")))
    }
}

/// Packed or one-byte codes of a low-bit type as the stored tensor: floats decoded to F32,
/// unsigned integers as U8, signed ones sign-extended to I16.
fn low_bit_tensor(low: LowBit, raw: &[u8], numel: usize, dims: &[usize]) -> candle_core::Result<Tensor> {
    let codes = low.codes(raw, numel);
    let dev = &Device::Cpu;
    match low {
        LowBit::Float(f) => Tensor::from_vec(codes.into_iter().map(|c| f.decode(c)).collect::<Vec<_>>(), dims, dev),
        LowBit::E8m0 => Tensor::from_vec(codes.into_iter().map(e8m0::decode).collect::<Vec<_>>(), dims, dev),
        LowBit::Int { signed: false, .. } => Tensor::from_vec(codes, dims, dev),
        LowBit::Int { signed: true, .. } => {
            Tensor::from_vec(codes.into_iter().map(|c| low.int_of_code(c) as i16).collect::<Vec<_>>(), dims, dev)
        }
    }
}

/// ONNX dims (i64, must be ≥ 0 for stored tensors) as candle dims.
pub fn dims_of_proto(p: &TensorProto) -> Result<Vec<usize>> {
    p.dims
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| WickError::invalid(format!("tensor '{}' has dim {d}", p.name)))
        })
        .collect()
}

/// Byte length a tensor of this ONNX type and these dims occupies as raw data.
pub fn byte_len(code: i32, dims: &[usize]) -> Result<usize> {
    raw_len(code, dims.iter().product())
}

/// A tensor of ONNX type `code` from its raw little-endian bytes (also BitCast's output).
pub fn from_raw(code: i32, dims: &[usize], raw: &[u8]) -> Result<Tensor> {
    let mut buf = HostBuffer::for_onnx(code, dims.iter().product())?;
    let dst = buf.bytes_mut();
    if dst.len() != raw.len() {
        return Err(WickError::invalid(format!(
            "{} bytes of raw data do not fit dims {dims:?} of element type {code}",
            raw.len()
        )));
    }
    dst.copy_from_slice(raw);
    buf.into_tensor(dims)
}

/// Decode a tensor whose data is inside the proto (raw_data or a typed repeated field).
pub fn from_proto(p: &TensorProto) -> Result<Tensor> {
    use onnx_type::*;
    let dims = dims_of_proto(p)?;
    let numel: usize = dims.iter().product();
    let dtype = dtype_of_onnx(p.data_type)?;
    let mismatch = |found: usize| {
        WickError::invalid(format!(
            "tensor '{}' holds {found} values/bytes, its dims {dims:?} need {numel} elements",
            p.name
        ))
    };
    let raw_tensor = |raw: &[u8]| match raw_len(p.data_type, numel)? == raw.len() {
        true => from_raw(p.data_type, &dims, raw),
        false => Err(mismatch(raw.len())),
    };
    if !p.raw_data.is_empty() {
        return raw_tensor(&p.raw_data);
    }
    if LowBit::of_onnx(p.data_type).is_some() {
        // One int32 per byte of raw data: a float8 code each, or two/four packed sub-byte codes.
        return raw_tensor(&p.int32_data.iter().map(|&v| v as u8).collect::<Vec<_>>());
    }
    let count = match p.data_type {
        FLOAT => p.float_data.len(),
        INT64 => p.int64_data.len(),
        DOUBLE => p.double_data.len(),
        UINT32 | UINT64 => p.uint64_data.len(),
        _ => p.int32_data.len(),
    };
    if count != numel {
        return Err(mismatch(count));
    }
    let mut buf = HostBuffer::zeroed(dtype, numel)?;
    match &mut buf {
        HostBuffer::F32(v) => v.copy_from_slice(&p.float_data),
        HostBuffer::I64(v) if p.data_type == UINT64 => {
            v.iter_mut().zip(&p.uint64_data).for_each(|(d, &s)| *d = s as i64)
        }
        HostBuffer::I64(v) => v.copy_from_slice(&p.int64_data),
        HostBuffer::F64(v) => v.copy_from_slice(&p.double_data),
        HostBuffer::U32(v) => v.iter_mut().zip(&p.uint64_data).for_each(|(d, &s)| *d = s as u32),
        HostBuffer::I32(v) => v.copy_from_slice(&p.int32_data),
        HostBuffer::I16(v) => v.iter_mut().zip(&p.int32_data).for_each(|(d, &s)| *d = s as i16),
        HostBuffer::U8(v) => v.iter_mut().zip(&p.int32_data).for_each(|(d, &s)| *d = s as u8),
        // float16 / bfloat16 values are stored as their bit patterns in int32_data.
        HostBuffer::F16(v) => {
            v.iter_mut().zip(&p.int32_data).for_each(|(d, &s)| *d = f16::from_bits(s as u16))
        }
        HostBuffer::BF16(v) => {
            v.iter_mut().zip(&p.int32_data).for_each(|(d, &s)| *d = bf16::from_bits(s as u16))
        }
        HostBuffer::Widened { .. } => {
            return Err(WickError::Internal("zeroed() made a widened buffer".into()))
        }
    }
    buf.into_tensor(&dims)
}

/// A wire tensor (from the page) as a candle tensor.
pub fn from_wire(name: &str, t: &wick_shared::Tensor) -> Result<Tensor> {
    use wick_shared::DType as W;
    if !t.is_consistent() {
        return Err(WickError::BadInput(format!(
            "input '{name}': {} bytes of data do not fit dims {:?} of {:?}",
            t.data.len(),
            t.dims,
            t.dtype
        )));
    }
    let dtype = match t.dtype {
        W::Float32 => DType::F32,
        W::Float16 => DType::F16,
        W::Uint8 | W::Bool => DType::U8,
        W::Int32 => DType::I32,
        W::Int64 => DType::I64,
        W::Int8 => DType::I16,
    };
    let onnx = if t.dtype == W::Int8 { onnx_type::INT8 } else { 0 };
    let mut buf = if onnx != 0 { HostBuffer::for_onnx(onnx, t.numel())? } else { HostBuffer::zeroed(dtype, t.numel())? };
    buf.bytes_mut().copy_from_slice(&t.data);
    buf.into_tensor(&t.dims)
}

/// A candle tensor as a wire tensor; `declared` is the graph's dtype for it (bool vs uint8).
pub fn to_wire(t: &Tensor, declared: Option<wick_shared::DType>) -> Result<wick_shared::Tensor> {
    use wick_shared::DType as W;
    let internal = |e: candle_core::Error| WickError::Internal(format!("output conversion: {e}"));
    let flat = t.flatten_all().map_err(internal)?;
    let (dtype, data): (W, Vec<u8>) = match t.dtype() {
        DType::F32 => (W::Float32, bytes_of(&flat.to_vec1::<f32>().map_err(internal)?)),
        DType::F16 => (W::Float16, bytes_of(&flat.to_vec1::<f16>().map_err(internal)?)),
        DType::I32 => (W::Int32, bytes_of(&flat.to_vec1::<i32>().map_err(internal)?)),
        DType::I16 if declared == Some(W::Int8) => {
            (W::Int8, flat.to_vec1::<i16>().map_err(internal)?.iter().map(|&v| v as i8 as u8).collect())
        }
        DType::I64 => (W::Int64, bytes_of(&flat.to_vec1::<i64>().map_err(internal)?)),
        DType::U8 => {
            let kind = if declared == Some(W::Bool) { W::Bool } else { W::Uint8 };
            (kind, flat.to_vec1::<u8>().map_err(internal)?)
        }
        other => {
            // Types without a wire form go out as float32, the closest the page can read.
            let f = flat.to_dtype(DType::F32).map_err(internal)?;
            let _ = other;
            (W::Float32, bytes_of(&f.to_vec1::<f32>().map_err(internal)?))
        }
    };
    Ok(wick_shared::Tensor { dtype, dims: t.dims().to_vec(), data })
}

fn bytes_of<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(data_type: i32, dims: Vec<i64>, raw: Vec<u8>) -> TensorProto {
        TensorProto { data_type, dims, raw_data: raw, ..Default::default() }
    }

    #[test]
    fn types_candle_lacks_are_widened_with_their_values() {
        let t = from_proto(&proto(onnx_type::INT8, vec![3], vec![0x80, 0xff, 0x05])).unwrap();
        assert_eq!(t.to_vec1::<i16>().unwrap(), vec![-128, -1, 5]);
        let t = from_proto(&proto(onnx_type::UINT16, vec![2], vec![0xff, 0xff, 0x01, 0x00])).unwrap();
        assert_eq!(t.to_vec1::<i32>().unwrap(), vec![65535, 1]);
        let mut raw = 7u64.to_le_bytes().to_vec();
        raw.extend(1u64.to_le_bytes());
        let t = from_proto(&proto(onnx_type::UINT64, vec![2], raw)).unwrap();
        assert_eq!(t.to_vec1::<i64>().unwrap(), vec![7, 1]);
    }

    #[test]
    fn low_bit_types_are_decoded_from_raw_and_int32_data() {
        // int4 [7, -8, -7, 1, 2] packed low nibble first, as numpy_helper.from_array writes it.
        let t = from_proto(&proto(onnx_type::INT4, vec![5], vec![0x87, 0x19, 0x02])).unwrap();
        assert_eq!(t.to_vec1::<i16>().unwrap(), vec![7, -8, -7, 1, 2]);
        let t = from_proto(&proto(onnx_type::UINT4, vec![3], vec![0x87, 0x0f])).unwrap();
        assert_eq!(t.to_vec1::<u8>().unwrap(), vec![7, 8, 15]);
        // The typed form: one int32 per packed byte (4-bit) or per element (float8).
        let typed = |data_type, dims, int32_data| TensorProto { data_type, dims, int32_data, ..Default::default() };
        let t = from_proto(&typed(onnx_type::INT2, vec![4], vec![0b11_10_01_00])).unwrap();
        assert_eq!(t.to_vec1::<i16>().unwrap(), vec![0, 1, -2, -1]);
        let t = from_proto(&typed(onnx_type::FLOAT8E4M3FN, vec![2], vec![0x2a, 0xfe])).unwrap();
        assert_eq!(t.to_vec1::<f32>().unwrap(), vec![0.3125, -448.0]);
        let t = from_proto(&proto(onnx_type::FLOAT8E8M0, vec![2], vec![127, 130])).unwrap();
        assert_eq!(t.to_vec1::<f32>().unwrap(), vec![1.0, 8.0]);
        assert_eq!(byte_len(onnx_type::FLOAT4E2M1, &[3, 3]).unwrap(), 5);
        assert!(from_proto(&proto(onnx_type::UINT4, vec![3], vec![0x87])).is_err());
    }

    #[test]
    fn raw_data_of_the_wrong_length_is_an_invalid_model() {
        let err = from_proto(&proto(onnx_type::FLOAT, vec![2], vec![0; 7])).unwrap_err();
        assert_eq!(err.code(), wick_shared::ErrorCode::InvalidModel);
    }

    #[test]
    fn int8_round_trips_over_the_wire() {
        let wire = wick_shared::Tensor { dtype: wick_shared::DType::Int8, dims: vec![2], data: vec![0xfe, 3] };
        let t = from_wire("x", &wire).unwrap();
        assert_eq!(t.to_vec1::<i16>().unwrap(), vec![-2, 3]);
        assert_eq!(to_wire(&t, Some(wick_shared::DType::Int8)).unwrap(), wire);
    }
}
