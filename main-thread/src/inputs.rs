//! Checks on what the page passes in, made before anything is sent: the worker makes the same
//! checks, but a caller learns sooner and with the name of the input at fault.

use wick_shared::{DType, ErrorCode, Image, Tensor};

use crate::WickError;

fn bad_input(message: String) -> WickError {
    WickError::wire(ErrorCode::BadInput, message)
}

/// A JS number that must be a whole, non-negative count.
fn count(value: f64) -> Option<usize> {
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= (1u64 << 53) as f64)
        .then_some(value as usize)
}

/// The tensor `name` from its parts: `dims` are JS numbers, `data` the bytes of its typed array.
pub fn tensor(name: &str, dtype: DType, dims: &[f64], data: Vec<u8>) -> Result<Tensor, WickError> {
    let dims = dims
        .iter()
        .map(|&d| count(d))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| {
            bad_input(format!(
                "input `{name}`: dims must be whole numbers ≥ 0, got {dims:?}"
            ))
        })?;
    let tensor = Tensor { dtype, dims, data };
    if !tensor.is_consistent() {
        let want = tensor.numel().saturating_mul(dtype.size());
        return Err(bad_input(format!(
            "input `{name}`: dims {:?} of {dtype:?} need {want} bytes ({} elements), but data has {} \
             bytes; pass a {}",
            tensor.dims,
            tensor.numel(),
            tensor.data.len(),
            dtype.typed_array_name()
        )));
    }
    Ok(tensor)
}

/// An RGBA image from an ImageData (or any `{width, height, data}`).
pub fn image(width: f64, height: f64, data: Vec<u8>) -> Result<Image, WickError> {
    let (Some(w), Some(h)) = (count(width), count(height)) else {
        return Err(bad_input(format!(
            "image: width and height must be whole numbers, got {width}×{height}"
        )));
    };
    if w == 0 || h == 0 || w > u32::MAX as usize || h > u32::MAX as usize {
        return Err(bad_input(format!("image: {w}×{h} is not a drawable size")));
    }
    if Some(data.len()) != w.checked_mul(h).and_then(|n| n.checked_mul(4)) {
        return Err(bad_input(format!(
            "image: {w}×{h} RGBA needs {} bytes, but data has {}",
            w.saturating_mul(h).saturating_mul(4),
            data.len()
        )));
    }
    Ok(Image {
        width: w as u32,
        height: h as u32,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_must_match_their_dims() {
        let t = tensor("input", DType::Float32, &[1.0, 1.0, 2.0, 2.0], vec![0; 16]).unwrap();
        assert_eq!(t.dims, vec![1, 1, 2, 2]);

        let short = tensor("input", DType::Float32, &[1.0, 4.0], vec![0; 8]).unwrap_err();
        assert_eq!(short.code(), "bad_input");
        assert!(short.to_string().contains("input `input`"), "{short}");
        assert!(short.to_string().contains("Float32Array"), "{short}");

        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY] {
            assert!(tensor("x", DType::Int64, &[bad], vec![]).is_err(), "{bad}");
        }
        assert!(tensor("empty", DType::Int64, &[0.0, 3.0], vec![]).is_ok());
    }

    #[test]
    fn images_are_rgba() {
        assert!(image(2.0, 3.0, vec![255; 24]).is_ok());
        assert_eq!(
            image(2.0, 3.0, vec![255; 6]).unwrap_err().code(),
            "bad_input"
        );
        assert!(image(0.0, 3.0, vec![]).is_err());
        assert!(image(2.5, 3.0, vec![0; 30]).is_err());
    }
}
