//! One `load` request, end to end: name the model's files ([`Sources`]), fetch the manifest and
//! the graph, then stream each external-data file through its [`FileRouter`] into the tensors,
//! verifying sizes and hashes as the bytes go by. Files come from the offline cache when it
//! holds them, and are stored in it as they stream when it does not.

use std::collections::HashMap;
use std::rc::Rc;

use js_sys::Uint8Array;
use web_sys::AbortSignal;
use wick_shared::{CacheReport, ExternalFile, Manifest, TaskKind};

use super::cache::{Cache, Writer, Written};
use super::fetch;
use crate::engine::{parse_model, Model};
use crate::error::{Result, WickError};
use crate::loader::{CpuPlacement, Expected, ExternalPlan, FileRouter, Sources, Verifier};
use crate::tasks::{self, Loaded};

/// What the page asked to load.
pub struct LoadSpec {
    pub url: Option<String>,
    pub manifest: Option<String>,
    pub variant: Option<String>,
    pub external_data: Vec<ExternalFile>,
    pub sha256: Option<String>,
    pub cache: bool,
    /// Fetch the files this task reads beside the model.
    pub task: Option<TaskKind>,
}

/// Fetches the files of one load, through the cache when there is one.
struct Files<'a> {
    id: u32,
    signal: &'a AbortSignal,
    cache: Option<Cache>,
    /// Whether files fetched from the network are stored (false after a cache error).
    store: bool,
    written: Vec<Written>,
    report: CacheReport,
}

impl<'a> Files<'a> {
    async fn new(id: u32, signal: &'a AbortSignal, use_cache: bool) -> Files<'a> {
        let mut report = CacheReport::default();
        let cache = if use_cache {
            match Cache::open().await {
                Ok(cache) => Some(cache),
                Err(e) => {
                    report.error = Some(e.to_wire());
                    None
                }
            }
        } else {
            None
        };
        let store = cache.is_some();
        Files { id, signal, cache, store, written: Vec::new(), report }
    }

    /// Stream the file at `url` into `consume`, verified against `expected`.
    async fn stream(&mut self, url: &str, expected: Expected, consume: &mut dyn FnMut(&Uint8Array) -> Result<()>) -> Result<()> {
        let mut verifier = Verifier::new(url, expected.clone());
        if let Some(hit) = self.lookup(url, &expected).await {
            let mut feed = |chunk: &Uint8Array| {
                verifier.update(chunk)?;
                consume(chunk)
            };
            fetch::stream_blob(self.id, url, &hit.file, self.signal, &mut feed).await?;
            verifier.finish()?;
            self.report.from_cache += 1;
            return Ok(());
        }
        let mut writer = self.writer(url).await;
        let mut cache_error = None;
        let streamed = {
            let mut feed = |chunk: &Uint8Array| {
                verifier.update(chunk)?;
                consume(chunk)?;
                if let Some(w) = writer.as_mut() {
                    if let Err(e) = w.write(chunk) {
                        cache_error = Some((e, w.name().to_string()));
                        writer = None;
                    }
                }
                Ok(())
            };
            fetch::stream(self.id, url, self.signal, &mut feed).await
        };
        if let Some((e, name)) = cache_error {
            self.cache_failed(e, Some(&name)).await;
        }
        let verified = streamed.and_then(|_| verifier.finish());
        match (verified, writer) {
            (Ok(sha256), Some(w)) => {
                let name = w.name().to_string();
                match w.finish(sha256) {
                    Ok(written) => self.written.push(written),
                    Err(e) => self.cache_failed(e, Some(&name)).await,
                }
                Ok(())
            }
            (Ok(_), None) => Ok(()),
            (Err(e), w) => {
                if let (Some(cache), Some(w)) = (&self.cache, w) {
                    let name = w.name().to_string();
                    drop(w);
                    cache.discard(&name).await;
                }
                Err(e)
            }
        }
    }

    /// The cached copy of `url`, if it is complete and is what `expected` says.
    async fn lookup(&self, url: &str, expected: &Expected) -> Option<super::cache::Hit> {
        let hit = self.cache.as_ref()?.lookup(url).await.ok()??;
        let size_ok = expected.size.is_none_or(|s| s == hit.record.size);
        let hash_ok = match (&expected.sha256, &hit.record.sha256) {
            (Some(want), Some(have)) => crate::loader::hex(want) == *have,
            (Some(_), None) => false, // stored without a hash: cannot vouch for it
            (None, _) => true,
        };
        (size_ok && hash_ok).then_some(hit)
    }

    async fn writer(&mut self, url: &str) -> Option<Writer> {
        if !self.store {
            return None;
        }
        match self.cache.as_ref()?.writer(url).await {
            Ok(w) => Some(w),
            Err(e) => {
                self.cache_failed(e, None).await;
                None
            }
        }
    }

    /// Storing failed: keep loading from the network, store nothing more of this model.
    async fn cache_failed(&mut self, e: WickError, name: Option<&str>) {
        self.store = false;
        if let Some(cache) = &self.cache {
            if let Some(name) = name {
                cache.discard(name).await;
            }
            for w in self.written.drain(..) {
                cache.discard(w.name()).await;
            }
        }
        self.report.error.get_or_insert(e.to_wire());
    }

    async fn read_all(&mut self, url: &str, expected: Expected) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut append = |chunk: &Uint8Array| {
            let start = bytes.len();
            bytes.resize(start + chunk.length() as usize, 0);
            chunk.copy_to(&mut bytes[start..]);
            Ok(())
        };
        self.stream(url, expected, &mut append).await?;
        Ok(bytes)
    }

    /// The model loaded: publish what was written. Returns the report for `ready`.
    async fn commit(mut self, key: &str) -> Option<CacheReport> {
        let cache = self.cache.take()?;
        if self.store && !self.written.is_empty() {
            match cache.commit(key, &self.written).await {
                Ok(()) => self.report.stored = self.written.len() as u32,
                Err(e) => {
                    for w in &self.written {
                        cache.discard(w.name()).await;
                    }
                    self.report.error.get_or_insert(e.to_wire());
                }
            }
        }
        Some(self.report)
    }

    /// The load failed: remove what it wrote.
    async fn abandon(mut self) {
        if let Some(cache) = self.cache.take() {
            for w in &self.written {
                cache.discard(w.name()).await;
            }
        }
    }
}

/// Load the model `spec` names. The report says what the cache did (None: cache off).
pub async fn load(id: u32, spec: LoadSpec, signal: &AbortSignal) -> Result<(Rc<Loaded>, Option<CacheReport>)> {
    let mut files = Files::new(id, signal, spec.cache).await;
    match load_with(&mut files, &spec).await {
        Ok((model, key)) => {
            let report = if spec.cache { files.commit(&key).await } else { None };
            Ok((model, report))
        }
        Err(e) => {
            files.abandon().await;
            Err(e)
        }
    }
}

async fn load_with(files: &mut Files<'_>, spec: &LoadSpec) -> Result<(Rc<Loaded>, String)> {
    let resolve = |url: &str, base: Option<&str>| fetch::resolve(url, base);
    let sources = match (&spec.url, &spec.manifest) {
        (Some(url), None) => {
            Sources::from_url(url, spec.variant.as_deref(), spec.sha256.as_deref(), &spec.external_data, &resolve)?
        }
        (None, Some(manifest_url)) => {
            let manifest_url = resolve(manifest_url, None)?;
            let bytes = files.read_all(&manifest_url, Expected::default()).await?;
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| WickError::InvalidModel {
                file: Some(manifest_url.clone()),
                message: format!("not a manifest: {e}"),
            })?;
            Sources::from_manifest(&manifest_url, &manifest, &spec.external_data, &resolve)?
        }
        _ => {
            return Err(WickError::BadRequest("a load names its model by exactly one of `url` and `manifest`".into()))
        }
    };
    let model_url = sources.model_url.clone();
    let bytes = files.read_all(&model_url, sources.expected(&model_url)).await?;
    let proto = parse_model(&bytes).map_err(|e| with_file(e, &model_url))?;
    drop(bytes);
    let graph = proto.graph.as_ref().ok_or_else(|| WickError::invalid("no graph"))?;
    let plan = ExternalPlan::from_graph(graph).map_err(|e| with_file(e, &model_url))?;
    let mut placement = CpuPlacement;
    let mut tensors = HashMap::new();
    for (location, list) in plan.files {
        let file_url = sources.file_url(&location, &resolve)?;
        let mut router = FileRouter::new(file_url.clone(), list, &mut placement)?;
        let mut route = |chunk: &Uint8Array| router.feed(chunk, &mut placement);
        files.stream(&file_url, sources.expected(&file_url), &mut route).await?;
        tensors.extend(router.finish()?);
    }
    let mut loaded = Loaded::new(Model::build(proto, tensors).map_err(|e| with_file(e, &model_url))?);
    for name in spec.task.map(tasks::files_for).transpose()?.unwrap_or_default() {
        let url = sources.companion_url(name, &resolve)?;
        let bytes = files.read_all(&url, sources.expected(&url)).await?;
        loaded.files.insert(name.to_string(), bytes);
    }
    Ok((Rc::new(loaded), sources.key))
}

fn with_file(e: WickError, file: &str) -> WickError {
    match e {
        WickError::InvalidModel { file: None, message } => WickError::InvalidModel { file: Some(file.to_string()), message },
        other => other,
    }
}
