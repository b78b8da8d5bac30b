//! The offline cache, in the origin private file system (OPFS), under `wick-cache/`.
//!
//! Why OPFS and not the Cache API: in a dedicated worker OPFS has synchronous access handles, so
//! each verified chunk is written at its offset as it streams — no second copy of the body
//! queued in memory when the disk is slower than the network (a tee'd Response for `cache.put`
//! would buffer), and a write that fails on quota fails at that chunk, with a typed error.
//!
//! Layout (names are the hex sha256 of the URL, so any URL fits):
//! - `f-<key>.bin` — a file's bytes; `f-<key>.json` — its [`CachedFile`] record, written only
//!   after the bytes are complete, verified and flushed, and after the whole model loaded. A
//!   `.bin` without its `.json` is never served (it is a write in progress or an abandoned one).
//! - `m-<key>.json` — a [`CachedModel`]: the URL the page loaded and its files, written last.
//!
//! A model is stored whole or not at all: a load that fails, is cancelled, or hits the quota
//! removes what it wrote.

use js_sys::{Reflect, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    File, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemReadWriteOptions, FileSystemSyncAccessHandle,
};
use wick_shared::{CachedFile, CachedModel};

use super::{fetch::js_message, scope};
use crate::error::{Result, WickError};
use crate::loader::hex;

const DIR: &str = "wick-cache";
/// -8 read as an unsigned 32-bit byte count.
const FILE_ERROR_NO_SPACE: f64 = (u32::MAX - 7) as f64;

fn storage_error(what: &str, e: &JsValue) -> WickError {
    let name = Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    if name == "QuotaExceededError" {
        WickError::QuotaExceeded(format!("{what}: {}", js_message(e)))
    } else {
        WickError::Storage(format!("{what}: {}", js_message(e)))
    }
}

async fn wait(promise: js_sys::Promise, what: &str) -> Result<JsValue> {
    JsFuture::from(promise).await.map_err(|e| storage_error(what, &e))
}

fn key(url: &str) -> String {
    hex(&Sha256::digest(url.as_bytes()))
}

/// The cache directory.
pub struct Cache {
    dir: FileSystemDirectoryHandle,
}

/// A cached file found by [`Cache::lookup`].
pub struct Hit {
    pub record: CachedFile,
    pub file: File,
}

/// A file being written; [`Cache::commit`] publishes it.
pub struct Writer {
    url: String,
    name: String,
    handle: Option<FileSystemSyncAccessHandle>,
    at: f64,
}

/// A file written completely, waiting for its model to finish loading.
pub struct Written {
    pub record: CachedFile,
    name: String,
}

impl Cache {
    /// Opens (creating) the cache directory; fails where OPFS is unavailable.
    pub async fn open() -> Result<Cache> {
        let storage = scope().navigator().storage();
        let root: FileSystemDirectoryHandle =
            wait(storage.get_directory(), "opening the origin private file system").await?.unchecked_into();
        let options = FileSystemGetDirectoryOptions::new();
        options.set_create(true);
        let dir = wait(root.get_directory_handle_with_options(DIR, &options), "opening wick-cache/").await?;
        Ok(Cache { dir: dir.unchecked_into() })
    }

    async fn file(&self, name: &str, create: bool) -> Result<Option<FileSystemFileHandle>> {
        let options = FileSystemGetFileOptions::new();
        options.set_create(create);
        match JsFuture::from(self.dir.get_file_handle_with_options(name, &options)).await {
            Ok(handle) => Ok(Some(handle.unchecked_into())),
            Err(e) if !create && Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).as_deref() == Some("NotFoundError") => Ok(None),
            Err(e) => Err(storage_error(name, &e)),
        }
    }

    async fn read_text(&self, name: &str) -> Result<Option<String>> {
        let Some(handle) = self.file(name, false).await? else { return Ok(None) };
        let file: File = wait(handle.get_file(), name).await?.unchecked_into();
        Ok(wait(file.text(), name).await?.as_string())
    }

    async fn write_text(&self, name: &str, text: &str) -> Result<()> {
        let mut writer = self.open_writer(name, "").await?;
        writer.write(&Uint8Array::from(text.as_bytes()))?;
        writer.close()
    }

    async fn remove(&self, name: &str) {
        // Absent already is fine: removal is how abandoned writes are cleaned.
        let _ = JsFuture::from(self.dir.remove_entry(name)).await;
    }

    /// The committed file cached for `url`, if its bytes are all there.
    pub async fn lookup(&self, url: &str) -> Result<Option<Hit>> {
        let k = key(url);
        let Some(text) = self.read_text(&format!("f-{k}.json")).await? else { return Ok(None) };
        let Ok(record) = serde_json::from_str::<CachedFile>(&text) else { return Ok(None) };
        let Some(handle) = self.file(&format!("f-{k}.bin"), false).await? else { return Ok(None) };
        let file: File = wait(handle.get_file(), url).await?.unchecked_into();
        if record.url != url || file.size() as u64 != record.size {
            return Ok(None);
        }
        Ok(Some(Hit { record, file }))
    }

    async fn open_writer(&self, name: &str, url: &str) -> Result<Writer> {
        let handle = self.file(name, true).await?.ok_or_else(|| WickError::Storage(format!("cannot create {name}")))?;
        let access: FileSystemSyncAccessHandle =
            wait(handle.create_sync_access_handle(), name).await?.unchecked_into();
        access.truncate_with_f64(0.0).map_err(|e| storage_error(name, &e))?;
        Ok(Writer { url: url.to_string(), name: name.to_string(), handle: Some(access), at: 0.0 })
    }

    /// Starts writing the file for `url`. Its old record goes first, so that a reader never
    /// pairs it with new bytes.
    pub async fn writer(&self, url: &str) -> Result<Writer> {
        let k = key(url);
        self.remove(&format!("f-{k}.json")).await;
        self.open_writer(&format!("f-{k}.bin"), url).await
    }

    /// Deletes what `writer` wrote (a failed or abandoned download).
    pub async fn discard(&self, name: &str) {
        self.remove(name).await;
    }

    /// Publishes a model whose files were all written: each file's record, then the model's.
    pub async fn commit(&self, model_url: &str, files: &[Written]) -> Result<()> {
        for f in files {
            let record = serde_json::to_string(&f.record).map_err(|e| WickError::Internal(e.to_string()))?;
            self.write_text(&f.name.replace(".bin", ".json"), &record).await?;
        }
        let model = CachedModel {
            url: model_url.to_string(),
            bytes: files.iter().map(|f| f.record.size).sum(),
            files: files.iter().map(|f| f.record.clone()).collect(),
            stored_at: js_sys::Date::now(),
        };
        let record = serde_json::to_string(&model).map_err(|e| WickError::Internal(e.to_string()))?;
        self.write_text(&format!("m-{}.json", key(model_url)), &record).await
    }

    /// Every model in the cache.
    pub async fn list(&self) -> Result<Vec<CachedModel>> {
        let mut models = Vec::new();
        let names = self.dir.keys();
        loop {
            let next = wait(names.next().map_err(|e| storage_error("listing wick-cache/", &e))?, "listing wick-cache/").await?;
            if Reflect::get(&next, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                break;
            }
            let name = Reflect::get(&next, &"value".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
            if name.starts_with("m-") && name.ends_with(".json") {
                if let Some(model) = self.read_text(&name).await?.and_then(|t| serde_json::from_str(&t).ok()) {
                    models.push(model);
                }
            }
        }
        models.sort_by(|a: &CachedModel, b| a.url.cmp(&b.url));
        Ok(models)
    }

    /// Removes the model loaded from `url`, and its files unless another cached model uses them.
    pub async fn delete(&self, url: &str) -> Result<()> {
        let models = self.list().await?;
        let Some(model) = models.iter().find(|m| m.url == url) else { return Ok(()) };
        self.remove(&format!("m-{}.json", key(url))).await;
        for file in &model.files {
            let shared = models.iter().any(|m| m.url != url && m.files.iter().any(|f| f.url == file.url));
            if !shared {
                let k = key(&file.url);
                self.remove(&format!("f-{k}.json")).await;
                self.remove(&format!("f-{k}.bin")).await;
            }
        }
        Ok(())
    }
}

impl Writer {
    /// Appends one chunk. On error (quota, storage) the writer is closed; discard its file.
    pub fn write(&mut self, chunk: &Uint8Array) -> Result<()> {
        let Some(handle) = &self.handle else { return Err(WickError::Storage("writer closed".into())) };
        let options = FileSystemReadWriteOptions::new();
        options.set_at(self.at);
        let error = match handle.write_with_js_u8_array_and_options(chunk, &options) {
            Ok(n) if n as u32 == chunk.length() => {
                self.at += n;
                return Ok(());
            }
            // Chromium answers a write past the quota with base::File's error code as an
            // unsigned count (FILE_ERROR_NO_SPACE = -8) instead of throwing QuotaExceededError.
            Ok(n) if n == FILE_ERROR_NO_SPACE => {
                WickError::QuotaExceeded(format!("{}: no space left within the storage quota", self.name))
            }
            Ok(n) => WickError::Storage(format!("{}: wrote {n} of {} bytes", self.name, chunk.length())),
            Err(e) => storage_error(&self.name, &e),
        };
        self.abort();
        Err(error)
    }

    fn abort(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
    }

    fn close(mut self) -> Result<()> {
        if let Some(handle) = self.handle.take() {
            handle.flush().map_err(|e| storage_error(&self.name, &e))?;
            handle.close();
        }
        Ok(())
    }

    /// The file's name in the cache directory (to discard it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The download is complete and verified: flush and close, ready to commit.
    pub fn finish(self, sha256: Option<String>) -> Result<Written> {
        let record = CachedFile { url: self.url.clone(), size: self.at as u64, sha256 };
        let name = self.name.clone();
        self.close()?;
        Ok(Written { record, name })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Release the file's lock even when a load ends early.
        self.abort();
    }
}

impl Written {
    pub fn name(&self) -> &str {
        &self.name
    }
}
