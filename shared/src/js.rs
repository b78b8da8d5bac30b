//! JsValue conversion used by the worker and the main-thread crate (feature `js`).
//!
//! serde-wasm-bindgen turns `Vec<u8>` fields into fresh `Uint8Array`s; this module then gives
//! tensor data its dtype's typed array (`Float32Array`, `BigInt64Array`, …) and lists every
//! buffer for the transfer list, so tensors cross postMessage without a structured-clone copy.
//! On the way in, any typed array (Float32Array, Uint8ClampedArray, …) or ArrayBuffer is viewed
//! as bytes, so JS callers can pass whatever typed array they have.

use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use crate::{DType, ErrorCode, WireError};

/// Nesting depth beyond which objects are not walked (messages are shallow; this stops cycles).
const MAX_DEPTH: u32 = 12;

/// Serialise a message to a JS object plus the list of ArrayBuffers to transfer with it.
pub fn to_js<T: Serialize>(msg: &T) -> Result<(JsValue, Array), WireError> {
    // `None` becomes `null` (as in JSON: symbolic dims, unknown dtypes), not `undefined`.
    let serializer = serde_wasm_bindgen::Serializer::new()
        .serialize_maps_as_objects(true)
        .serialize_missing_as_null(true);
    let value = msg
        .serialize(&serializer)
        .map_err(|e| WireError::new(ErrorCode::Internal, format!("cannot encode message: {e}")))?;
    let transfer = Array::new();
    type_tensor_data(&value, &transfer, 0);
    Ok((value, transfer))
}

/// Deserialise a message from a JS object, accepting any typed array where bytes are expected.
pub fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, WireError> {
    bytes_views(&value, 0);
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| WireError::new(ErrorCode::BadRequest, format!("malformed message: {e}")))
}

/// Walk `value`; give each `{dtype, data: Uint8Array}` its typed view; collect buffers.
fn type_tensor_data(value: &JsValue, transfer: &Array, depth: u32) {
    if depth > MAX_DEPTH || !value.is_object() {
        return;
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        transfer.push(&bytes.buffer());
        return;
    }
    if let Some(array) = value.dyn_ref::<Array>() {
        array.for_each(&mut |v, _, _| type_tensor_data(&v, transfer, depth + 1));
        return;
    }
    let dtype = Reflect::get(value, &"dtype".into()).ok().and_then(|d| d.as_string());
    let data = Reflect::get(value, &"data".into()).ok();
    if let (Some(dtype), Some(data)) = (dtype, data) {
        if let (Some(bytes), Some(dtype)) = (data.dyn_ref::<Uint8Array>(), parse_dtype(&dtype)) {
            let buffer = bytes.buffer();
            if let Some(view) = typed_view(&buffer, bytes.byte_offset(), bytes.length(), dtype) {
                let _ = Reflect::set(value, &"data".into(), &view);
            }
            transfer.push(&buffer);
            return;
        }
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        if let Ok(child) = Reflect::get(value, &key) {
            type_tensor_data(&child, transfer, depth + 1);
        }
    }
}

/// Replace every typed array or ArrayBuffer inside `value` by a Uint8Array over the same bytes.
fn bytes_views(value: &JsValue, depth: u32) {
    // Bytes already: never walk a buffer's elements (Object.keys of a 300 KB photo is 300,000
    // keys — it once cost the image pipelines 30 ms a run).
    if depth > MAX_DEPTH || !value.is_object() || ArrayBuffer::is_view(value) || value.is_instance_of::<ArrayBuffer>() {
        return;
    }
    if let Some(array) = value.dyn_ref::<Array>() {
        array.for_each(&mut |v, _, _| bytes_views(&v, depth + 1));
        return;
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let Ok(child) = Reflect::get(value, &key) else { continue };
        if let Some(image) = plain_image(&child) {
            let _ = Reflect::set(value, &key, &image);
        } else if let Some(view) = as_bytes(&child) {
            let _ = Reflect::set(value, &key, &view);
        } else {
            bytes_views(&child, depth + 1);
        }
    }
}

/// A DOM `ImageData` keeps `width` and `height` on its prototype, where serde does not look:
/// copy them onto a plain object (the pixels stay where they are, viewed as bytes).
fn plain_image(v: &JsValue) -> Option<Object> {
    if !v.is_object() || v.is_instance_of::<Array>() {
        return None;
    }
    let data = Reflect::get(v, &"data".into()).ok()?;
    if !data.is_instance_of::<js_sys::Uint8ClampedArray>() {
        return None;
    }
    let plain = Object::new();
    for field in ["width", "height"] {
        let value = Reflect::get(v, &field.into()).ok().filter(|n| n.as_f64().is_some())?;
        Reflect::set(&plain, &field.into(), &value).ok()?;
    }
    Reflect::set(&plain, &"data".into(), &as_bytes(&data)?.into()).ok()?;
    Some(plain)
}

/// A Uint8Array over `v`'s bytes if `v` is a non-Uint8Array typed array, DataView or ArrayBuffer.
fn as_bytes(v: &JsValue) -> Option<Uint8Array> {
    if v.is_instance_of::<Uint8Array>() || !v.is_object() {
        return None;
    }
    if let Some(buffer) = v.dyn_ref::<ArrayBuffer>() {
        return Some(Uint8Array::new(buffer));
    }
    if ArrayBuffer::is_view(v) {
        let buffer = Reflect::get(v, &"buffer".into()).ok()?;
        let offset = Reflect::get(v, &"byteOffset".into()).ok()?.as_f64()? as u32;
        let length = Reflect::get(v, &"byteLength".into()).ok()?.as_f64()? as u32;
        return Some(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length));
    }
    None
}

fn parse_dtype(name: &str) -> Option<DType> {
    serde_wasm_bindgen::from_value(JsValue::from_str(name)).ok()
}

fn typed_view(buffer: &ArrayBuffer, offset: u32, len: u32, dtype: DType) -> Option<JsValue> {
    let n = len / dtype.size() as u32;
    let size = dtype.size() as u32;
    if !offset.is_multiple_of(size) || !len.is_multiple_of(size) {
        return None;
    }
    Some(match dtype {
        DType::Float32 => js_sys::Float32Array::new_with_byte_offset_and_length(buffer, offset, n).into(),
        DType::Float16 => js_sys::Uint16Array::new_with_byte_offset_and_length(buffer, offset, n).into(),
        DType::Int8 => js_sys::Int8Array::new_with_byte_offset_and_length(buffer, offset, n).into(),
        DType::Uint8 | DType::Bool => return None,
        DType::Int32 => js_sys::Int32Array::new_with_byte_offset_and_length(buffer, offset, n).into(),
        DType::Int64 => js_sys::BigInt64Array::new_with_byte_offset_and_length(buffer, offset, n).into(),
    })
}
