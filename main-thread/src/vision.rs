//! Images for the vision pipelines, from whatever the page has: an ImageData (or
//! `{width, height, data}`), anything a canvas can draw (ImageBitmap, <img>, <canvas>,
//! OffscreenCanvas, <video>, VideoFrame), an encoded file (Blob/File, ArrayBuffer, typed array),
//! or a URL to fetch. Pixels are sent as RGBA; encoded files are sent as they are and decoded
//! in the worker.

use js_sys::{ArrayBuffer, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wick_shared::{ErrorCode, ImageInput};

use crate::convert::{self, get};
use crate::WickError;

fn bad_input(message: impl Into<String>) -> WickError {
    WickError::wire(ErrorCode::BadInput, message)
}

pub(crate) fn js_error(what: &str, e: JsValue) -> WickError {
    let message = Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string());
    bad_input(format!("{what}: {}", message.unwrap_or_else(|| format!("{e:?}"))))
}

pub(crate) async fn wait(promise: JsValue, what: &str) -> Result<JsValue, WickError> {
    let promise: Promise = promise.dyn_into().map_err(|_| bad_input(format!("{what}: not a promise")))?;
    JsFuture::from(promise).await.map_err(|e| js_error(what, e))
}

pub(crate) fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, WickError> {
    let f: Function = Reflect::get(target, &method.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| bad_input(format!("{method} is not available here")))?;
    let args: js_sys::Array = args.iter().collect();
    f.apply(target, &args).map_err(|e| js_error(method, e))
}

/// The bytes of a file the page named: a URL (fetched), a Blob/File, an ArrayBuffer or a typed
/// array; None for anything else. `what` names it in errors ("the image").
pub(crate) async fn file_bytes(value: &JsValue, what: &str) -> Result<Option<Vec<u8>>, WickError> {
    if let Some(url) = value.as_string().or_else(|| value.dyn_ref::<web_sys::Url>().map(|u| u.href())) {
        let response = wait(call(&js_sys::global(), "fetch", &[convert::absolute(&url).into()])?, &format!("fetching {what}")).await?;
        if !get(&response, "ok").as_bool().unwrap_or(false) {
            return Err(WickError::wire(ErrorCode::FetchFailed, format!("fetching {what} {url}: HTTP {}", get(&response, "status").as_f64().unwrap_or(0.0))));
        }
        let buffer = wait(call(&response, "arrayBuffer", &[])?, &format!("reading {what}")).await?;
        return Ok(Some(Uint8Array::new(&buffer).to_vec()));
    }
    if value.is_instance_of::<web_sys::Blob>() {
        let buffer = wait(call(value, "arrayBuffer", &[])?, &format!("reading {what} file")).await?;
        return Ok(Some(Uint8Array::new(&buffer).to_vec()));
    }
    if value.is_instance_of::<ArrayBuffer>() || ArrayBuffer::is_view(value) {
        return Ok(convert::bytes_of(value));
    }
    Ok(None)
}

/// The image the page passed, ready for the wire.
pub async fn image(value: &JsValue) -> Result<ImageInput, WickError> {
    if let Some(bytes) = file_bytes(value, "the image").await? {
        return Ok(ImageInput::Encoded { bytes });
    }
    // An ImageData, or anything shaped like one.
    if get(value, "data").is_object() && get(value, "width").as_f64().is_some() {
        return Ok(ImageInput::Pixels(convert::image(value)?));
    }
    // Anything a canvas can draw: draw it and read its pixels.
    let (width, height) = drawable_size(value)
        .ok_or_else(|| bad_input("expected an image: ImageData, ImageBitmap, <img>, <canvas>, Blob, bytes or a URL"))?;
    let canvas_class: Function = Reflect::get(&js_sys::global(), &"OffscreenCanvas".into())
        .ok()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| bad_input("OffscreenCanvas is not available to read this image"))?;
    let args: js_sys::Array = [JsValue::from(width), JsValue::from(height)].iter().collect();
    let canvas = Reflect::construct(&canvas_class, &args).map_err(|e| js_error("OffscreenCanvas", e))?;
    let ctx = call(&canvas, "getContext", &["2d".into()])?;
    call(&ctx, "drawImage", &[value.clone(), 0.into(), 0.into()])?;
    let data = call(&ctx, "getImageData", &[0.into(), 0.into(), width.into(), height.into()])?;
    Ok(ImageInput::Pixels(convert::image(&data)?))
}

/// The pixel size of a drawable image, under whichever names its type uses.
fn drawable_size(value: &JsValue) -> Option<(f64, f64)> {
    let pairs = [("naturalWidth", "naturalHeight"), ("videoWidth", "videoHeight"), ("displayWidth", "displayHeight"), ("width", "height")];
    pairs.iter().find_map(|(w, h)| {
        let (w, h) = (get(value, w).as_f64()?, get(value, h).as_f64()?);
        (w > 0.0 && h > 0.0).then_some((w, h))
    })
}
