//! One `load` request, end to end: name the model's files ([`Sources`]), fetch the manifest and
//! the graph, then stream each external-data file through its [`FileRouter`] into the tensors,
//! verifying sizes and hashes as the bytes go by. Files come from the offline cache when it
//! holds them, and are stored in it as they stream when it does not.
//!
//! Weight files stream [`LANES`] at a time: each lane takes the next file when its own is done.
//! A second download in flight keeps the network busy while the worker copies, and costs no
//! memory, since chunks go straight into tensors. Every tensor is allocated before the first
//! download starts, in the plan's order, so the heap's layout does not depend on which download
//! is faster; the buffers are not zeroed, so their pages are only touched as bytes land.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use js_sys::Uint8Array;
use web_sys::AbortSignal;
use wick_gpu::Gpu;
use wick_shared::{CacheReport, ExternalFile, Manifest, TaskKind, WeightsChoice, AUTO_GPU_WEIGHTS_BYTES};

use super::cache::{Cache, Writer, Written};
use super::fetch;
use crate::engine::{parse_model, Model};
use crate::error::{Result, WickError};
use crate::engine::ModelBackend;
use crate::loader::{CpuPlacement, Expected, ExternalPlan, FileRouter, GpuPlacement, Placed, Placement, Sources, Verifier};
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
    /// Where f32 external weights go ([`Weights::of`]).
    pub weights: Weights,
    /// On WebGPU, the most bytes one binding holds: wider weights are cut into parts before
    /// they stream (`engine::split`).
    pub bind_limit: Option<u64>,
}

/// Where a load places the f32 weights of external data (the page's `weights`, once the
/// backend is chosen).
#[derive(Clone)]
pub enum Weights {
    Host,
    /// Straight to this device ([`GpuPlacement`]).
    Gpu(Rc<Gpu>),
    /// To this device when a graph's external weights exceed the bytes given, else the host.
    GpuAbove(Rc<Gpu>, u64),
}

impl Weights {
    /// The page's choice against the chosen backend: `gpu` needs a device (else a bad request,
    /// saying why the model runs on the CPU); `auto` streams to a device above
    /// [`AUTO_GPU_WEIGHTS_BYTES`].
    pub fn of(choice: WeightsChoice, backend: &ModelBackend) -> Result<Weights> {
        match (choice, backend.device()) {
            (WeightsChoice::Host, _) => Ok(Weights::Host),
            (WeightsChoice::Gpu, Some(gpu)) => Ok(Weights::Gpu(gpu)),
            (WeightsChoice::Gpu, None) => Err(WickError::BadRequest(format!(
                "weights: \"gpu\" needs the webgpu backend, but this model runs on the CPU ({})",
                backend.reason()
            ))),
            (WeightsChoice::Auto, Some(gpu)) => Ok(Weights::GpuAbove(gpu, AUTO_GPU_WEIGHTS_BYTES)),
            (WeightsChoice::Auto, None) => Ok(Weights::Host),
        }
    }
}

/// Weight files streamed at once.
const LANES: usize = 2;

/// Fetches the files of one load, through the cache when there is one. Shared by the lanes
/// (one thread, so cells suffice; no borrow is held across an await).
struct Files<'a> {
    id: u32,
    signal: &'a AbortSignal,
    cache: Option<Cache>,
    /// Whether files fetched from the network are stored (false after a cache error).
    store: Cell<bool>,
    /// Files being written: a lane dropped mid-file (another failed) leaves its file here for
    /// [`Files::abandon`].
    writing: RefCell<Vec<String>>,
    written: RefCell<Vec<Written>>,
    report: RefCell<CacheReport>,
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
        let store = Cell::new(cache.is_some());
        Files {
            id,
            signal,
            cache,
            store,
            writing: RefCell::default(),
            written: RefCell::default(),
            report: RefCell::new(report),
        }
    }

    /// Stream the file at `url` into `consume`, verified against `expected`.
    async fn stream(&self, url: &str, expected: Expected, consume: &mut dyn FnMut(&Uint8Array) -> Result<()>) -> Result<()> {
        let mut verifier = Verifier::new(url, expected.clone());
        if let Some(hit) = self.lookup(url, &expected).await {
            let mut feed = |chunk: &Uint8Array| {
                verifier.update(chunk)?;
                consume(chunk)
            };
            fetch::stream_blob(self.id, url, &hit.file, self.signal, &mut feed).await?;
            verifier.finish()?;
            self.report.borrow_mut().from_cache += 1;
            return Ok(());
        }
        let mut writer = self.writer(url).await;
        let writing = writer.as_ref().map(|w| w.name().to_string());
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
        // From here on this call deals with its file itself.
        self.writing.borrow_mut().retain(|name| Some(name) != writing.as_ref());
        match (verified, writer) {
            (Ok(sha256), Some(w)) => {
                let name = w.name().to_string();
                match w.finish(sha256) {
                    // Storing failed in another lane meanwhile: this one is not kept either.
                    Ok(written) if !self.store.get() => self.discard(written.name()).await,
                    Ok(written) => self.written.borrow_mut().push(written),
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

    async fn writer(&self, url: &str) -> Option<Writer> {
        if !self.store.get() {
            return None;
        }
        match self.cache.as_ref()?.writer(url).await {
            Ok(w) => {
                self.writing.borrow_mut().push(w.name().to_string());
                Some(w)
            }
            Err(e) => {
                self.cache_failed(e, None).await;
                None
            }
        }
    }

    /// Storing failed: keep loading from the network, store nothing more of this model.
    async fn cache_failed(&self, e: WickError, name: Option<&str>) {
        self.store.set(false);
        self.report.borrow_mut().error.get_or_insert(e.to_wire());
        if let Some(name) = name {
            self.discard(name).await;
        }
        let written = std::mem::take(&mut *self.written.borrow_mut());
        for w in written {
            self.discard(w.name()).await;
        }
    }

    async fn discard(&self, name: &str) {
        if let Some(cache) = &self.cache {
            cache.discard(name).await;
        }
    }

    async fn read_all(&self, url: &str, expected: Expected) -> Result<Vec<u8>> {
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
    async fn commit(self, key: &str) -> Option<CacheReport> {
        let cache = self.cache?;
        let written = self.written.into_inner();
        let mut report = self.report.into_inner();
        if self.store.get() && !written.is_empty() {
            match cache.commit(key, &written).await {
                Ok(()) => report.stored = written.len() as u32,
                Err(e) => {
                    for w in &written {
                        cache.discard(w.name()).await;
                    }
                    report.error.get_or_insert(e.to_wire());
                }
            }
        }
        Some(report)
    }

    /// The load failed: remove what it wrote.
    async fn abandon(self) {
        if let Some(cache) = self.cache {
            for name in self.writing.into_inner() {
                cache.discard(&name).await;
            }
            for w in self.written.into_inner() {
                cache.discard(w.name()).await;
            }
        }
    }
}

/// Load the model `spec` names. The report says what the cache did (None: cache off).
pub async fn load(id: u32, spec: LoadSpec, signal: &AbortSignal) -> Result<(Rc<Loaded>, Option<CacheReport>)> {
    let files = Files::new(id, signal, spec.cache).await;
    match load_with(&files, &spec).await {
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

async fn load_with(files: &Files<'_>, spec: &LoadSpec) -> Result<(Rc<Loaded>, String)> {
    let resolve = |url: &str, base: Option<&str>| fetch::resolve(url, base);
    let (main, others) = tasks::graphs_for(spec.task)?.split_first().ok_or_else(|| WickError::invalid("a task without graphs"))?;
    let sources = match (&spec.url, &spec.manifest) {
        (Some(url), None) => {
            Sources::from_url(url, main, spec.variant.as_deref(), spec.sha256.as_deref(), &spec.external_data, &resolve)?
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
    let mut loaded = Loaded::new(load_graph(files, &sources, spec).await?);
    for graph in others {
        let other = sources.other_graph(graph, spec.variant.as_deref(), &resolve)?;
        loaded.graphs.insert(graph.to_string(), load_graph(files, &other, spec).await?);
    }
    for name in spec.task.map(tasks::files_for).transpose()?.unwrap_or_default() {
        let url = sources.companion_url(name, &resolve)?;
        let bytes = files.read_all(&url, sources.expected(&url)).await?;
        loaded.files.insert(name.to_string(), bytes);
    }
    Ok((Rc::new(loaded), sources.key))
}

/// Fetch and parse the graph `sources` names, stream its external data into its tensors — f32
/// ones straight to the GPU when `spec.weights` says so, cut to the device's bindings — and
/// build it.
async fn load_graph(files: &Files<'_>, sources: &Sources, spec: &LoadSpec) -> Result<Model> {
    let weights = &spec.weights;
    let model_url = sources.model_url.clone();
    let bytes = files.read_all(&model_url, sources.expected(&model_url)).await?;
    let mut proto = parse_model(&bytes).map_err(|e| with_file(e, &model_url))?;
    drop(bytes);
    if let Some(limit) = spec.bind_limit {
        crate::engine::split::split_wide_weights(&mut proto, limit).map_err(|e| with_file(e, &model_url))?;
    }
    let graph = proto.graph.as_ref().ok_or_else(|| WickError::invalid("no graph"))?;
    let plan = ExternalPlan::from_graph(graph).map_err(|e| with_file(e, &model_url))?;
    let gpu = match weights {
        Weights::Host => None,
        Weights::Gpu(gpu) => Some(gpu.clone()),
        Weights::GpuAbove(gpu, above) => (plan.weight_bytes() > *above).then(|| gpu.clone()),
    };
    let Some(gpu) = gpu else {
        let tensors = stream_into(files, sources, plan, None, || CpuPlacement).await?;
        return Model::build(proto, tensors.into_iter().collect()).map_err(|e| with_file(e, &model_url));
    };
    let placed = stream_into(files, sources, plan, Some(&*gpu), || GpuPlacement::new(gpu.clone())).await?;
    // The writes' device errors (out of memory, a lost device) are reported now, at the load.
    // Between runs (`exclusive`): a check drains every pending error, and a run in flight must
    // find its own at its read-back.
    let turn = gpu.exclusive().await;
    gpu.check().await.map_err(placing_error)?;
    drop(turn);
    let (mut host, mut device) = (HashMap::new(), HashMap::new());
    for (name, p) in placed {
        match p {
            Placed::Host(t) => drop(host.insert(name, t)),
            Placed::Device(t) => drop(device.insert(name, t)),
        }
    }
    Model::build_placed(proto, host, device).map_err(|e| with_file(e, &model_url))
}

/// Streams every file of `plan` through a router into `placement()`s, [`LANES`] files at a
/// time; every tensor is allocated (in the plan's order) before the first byte arrives.
async fn stream_into<P: Placement>(
    files: &Files<'_>,
    sources: &Sources,
    plan: ExternalPlan,
    gpu: Option<&Gpu>,
    placement: impl Fn() -> P,
) -> Result<Vec<(String, P::Output)>> {
    let resolve = |url: &str, base: Option<&str>| fetch::resolve(url, base);
    let mut allocating = placement();
    let queue = plan
        .files
        .into_iter()
        .map(|(location, list)| {
            let url = sources.file_url(&location, &resolve)?;
            let router = FileRouter::new(url.clone(), list, &mut allocating)?;
            Ok((url, router))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(gpu) = gpu {
        // Device buffers that do not fit fail now, before any byte is downloaded (between
        // runs, as below).
        let _turn = gpu.exclusive().await;
        gpu.check().await.map_err(placing_error)?;
    }
    let queue = RefCell::new(queue.into_iter());
    let tensors = RefCell::new(Vec::new());
    let lane = || async {
        let mut placement = placement();
        loop {
            let Some((url, mut router)) = queue.borrow_mut().next() else { return Ok(()) };
            let mut route = |chunk: &Uint8Array| router.feed(chunk, &mut placement);
            files.stream(&url, sources.expected(&url), &mut route).await?;
            tensors.borrow_mut().extend(router.finish()?);
        }
    };
    try_join_all((0..LANES).map(|_| Box::pin(lane()) as Lane).collect()).await?;
    Ok(tensors.into_inner())
}

/// A device error met while placing weights, as the protocol's.
fn placing_error(e: wick_gpu::GpuError) -> WickError {
    match e {
        wick_gpu::GpuError::OutOfMemory { .. } => WickError::GpuOutOfMemory(format!("placing the weights: {e}")),
        wick_gpu::GpuError::DeviceLost { reason } => WickError::GpuDeviceLost(reason),
        other => WickError::Internal(format!("placing the weights on the GPU: {other}")),
    }
}

/// One lane of downloads, or any future that only succeeds or fails.
type Lane<'a> = Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

/// Polls `futures` together until all succeed or one fails; the first error drops the rest
/// (dropping a download cancels its body).
async fn try_join_all(mut futures: Vec<Lane<'_>>) -> Result<()> {
    poll_fn(|cx| {
        let mut i = 0;
        while i < futures.len() {
            match futures[i].as_mut().poll(cx) {
                Poll::Ready(Ok(())) => drop(futures.swap_remove(i)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => i += 1,
            }
        }
        if futures.is_empty() { Poll::Ready(Ok(())) } else { Poll::Pending }
    })
    .await
}

fn with_file(e: WickError, file: &str) -> WickError {
    match e {
        WickError::InvalidModel { file: None, message } => WickError::InvalidModel { file: Some(file.to_string()), message },
        other => other,
    }
}
