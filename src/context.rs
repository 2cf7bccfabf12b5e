//! GPU context: adapter and device acquisition, limits and optional features.
//!
//! [`GpuContext`] wraps a `wgpu::Device` and `wgpu::Queue` together with what the
//! engine needs to know about them: the limits in force and which optional features
//! (subgroups, `shader-f16`, timestamp queries) it may use. Create one with
//! [`GpuContext::new`] (async, works on the web), [`GpuContext::new_blocking`] (native),
//! or hand in your own device with [`GpuContext::from_device`].

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Options for acquiring an adapter and a device.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// Backends to consider; `None` reads `WGPU_BACKEND` from the environment
    /// (native) and falls back to every backend compiled in.
    pub backends: Option<wgpu::Backends>,
    /// Power preference passed to the adapter request.
    pub power_preference: wgpu::PowerPreference,
    /// Use subgroup operations when the adapter has them.
    pub use_subgroups: bool,
    /// Use `shader-f16` when the adapter has it.
    pub use_f16: bool,
    /// Fail unless these features are present (e.g. `Features::SUBGROUP` in a test).
    pub required_features: wgpu::Features,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            backends: None,
            power_preference: wgpu::PowerPreference::HighPerformance,
            use_subgroups: true,
            use_f16: true,
            required_features: wgpu::Features::empty(),
        }
    }
}

/// The optional capabilities the engine's kernels may use on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Subgroup operations (`subgroupAdd`) are enabled.
    pub subgroups: bool,
    /// `f16` arithmetic and storage are enabled in shaders.
    pub f16: bool,
    /// Timestamp queries inside compute passes are enabled.
    pub timestamps: bool,
}

/// A device, its queue, and what the engine may use of them.
///
/// Cheap to clone: clones share the same device.
#[derive(Clone)]
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    caps: Capabilities,
    lost: Arc<Mutex<Option<String>>>,
    gpu_error: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Acquires an adapter and a device, requesting the adapter's own limits and the
    /// optional features it has. Works natively and on the web.
    pub async fn new(options: &ContextOptions) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = match options.backends {
            Some(b) => b,
            None => wgpu::Backends::all().with_env(),
        };
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        Self::from_adapter(&adapter, options).await
    }

    /// Blocking form of [`GpuContext::new`] for native programs.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: &ContextOptions) -> Result<Self> {
        pollster::block_on(Self::new(options))
    }

    /// Creates the device on a given adapter, with the adapter's limits and the optional
    /// features that `options` allows.
    pub async fn from_adapter(adapter: &wgpu::Adapter, options: &ContextOptions) -> Result<Self> {
        let info = adapter.get_info();
        let available = adapter.features();
        if !available.contains(options.required_features) {
            return Err(Error::MissingFeature {
                adapter: info.name.clone(),
                feature: format!("{:?}", options.required_features - available),
            });
        }
        let mut wanted = options.required_features;
        if options.use_subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        if options.use_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        wanted |= wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let features = wanted & available;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("coptim"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::DeviceRequest(e.to_string()))?;
        let ctx = Self::from_parts(device, queue, info);
        let lost_flag = ctx.lost.clone();
        ctx.device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_flag.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        // An error outside every error scope is recorded for the next check
        // instead of wgpu's default handler, which panics.
        let slot = ctx.gpu_error.clone();
        ctx.device
            .on_uncaptured_error(Arc::new(move |e| record_error(&slot, e.to_string())));
        Ok(ctx)
    }

    /// Wraps a device and queue that the caller owns. The engine reads the device's
    /// limits and enabled features and uses only what is enabled; it installs no
    /// device-lost callback (that stays the caller's).
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let info = device.adapter_info();
        Self::from_parts(device, queue, info)
    }

    fn from_parts(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let features = device.features();
        let limits = device.limits();
        let caps = Capabilities {
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            f16: features.contains(wgpu::Features::SHADER_F16),
            timestamps: features.contains(
                wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
            ),
        };
        Self {
            device,
            queue,
            info,
            limits,
            caps,
            lost: Arc::new(Mutex::new(None)),
            gpu_error: Arc::new(Mutex::new(None)),
        }
    }

    /// Returns a copy of this context whose kernels do not use the given optional
    /// capabilities, to exercise the fallback paths.
    pub fn without(&self, subgroups: bool, f16: bool) -> Self {
        let mut ctx = self.clone();
        ctx.caps.subgroups &= !subgroups;
        ctx.caps.f16 &= !f16;
        ctx
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter's description.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits in force on the device.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The optional capabilities the engine uses.
    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// `Err(Error::DeviceLost)` once the device has been lost, and `Err(Error::Gpu)`
    /// once for the first GPU error recorded since the last call (an error outside
    /// every scope on a device this context created, or a web error scope that
    /// resolved after [`GpuContext::guarded`] returned).
    pub fn check_lost(&self) -> Result<()> {
        if let Some(reason) = self.lost.lock().ok().and_then(|s| s.clone()) {
            return Err(Error::DeviceLost(reason));
        }
        match self.gpu_error.lock().ok().and_then(|mut s| s.take()) {
            Some(message) => Err(Error::Gpu(message)),
            None => Ok(()),
        }
    }

    /// Runs `create` (creating shaders and pipelines, or submitting a first
    /// dispatch) inside validation and out-of-memory error scopes, so that what
    /// wgpu would report as an uncaptured error (a panic by default) becomes
    /// [`Error::Gpu`] naming `what`. Natively the scopes are awaited at once; on the
    /// web they resolve later, and their error is returned by the next
    /// [`GpuContext::check_lost`].
    pub fn guarded<T>(&self, what: &str, create: impl FnOnce() -> T) -> Result<T> {
        self.check_lost()?;
        match self.scoped(what, create) {
            (out, None) => Ok(out),
            (_, Some(e)) => Err(e),
        }
    }

    /// [`GpuContext::guarded`] for callers that cannot return an error at once:
    /// gives back what `create` made together with the scopes' error (always `None`
    /// on the web, where it is recorded for [`GpuContext::check_lost`] instead).
    pub(crate) fn scoped<T>(&self, what: &str, create: impl FnOnce() -> T) -> (T, Option<Error>) {
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let out = create();
        let (oom, validation) = (oom.pop(), validation.pop());
        let scopes = async move { oom.await.or(validation.await) };
        #[cfg(not(target_arch = "wasm32"))]
        let error = pollster::block_on(scopes).map(|e| Error::Gpu(format!("{what}: {e}")));
        #[cfg(target_arch = "wasm32")]
        let error = {
            let (slot, what) = (self.gpu_error.clone(), what.to_string());
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(e) = scopes.await {
                    record_error(&slot, format!("{what}: {e}"));
                }
            });
            None
        };
        (out, error)
    }

    /// Records an error for the next [`GpuContext::check_lost`].
    #[cfg(feature = "nn")]
    pub(crate) fn record_error(&self, error: &Error) {
        record_error(&self.gpu_error, error.to_string());
    }

    /// Blocks until all submitted work is done (native); a no-op on the web, where
    /// callbacks run from the event loop.
    pub fn wait_idle(&self) -> Result<()> {
        self.check_lost()?;
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(e.to_string()))?;
        Ok(())
    }

    /// A summary of the adapter, backend, limits and features in use.
    pub fn report(&self) -> ContextReport {
        ContextReport {
            adapter: self.info.name.clone(),
            backend: format!("{:?}", self.info.backend),
            device_type: format!("{:?}", self.info.device_type),
            driver: format!("{} {}", self.info.driver, self.info.driver_info)
                .trim()
                .to_string(),
            max_storage_buffer_binding_size: self.limits.max_storage_buffer_binding_size,
            max_buffer_size: self.limits.max_buffer_size,
            max_workgroups_per_dimension: self.limits.max_compute_workgroups_per_dimension,
            max_invocations_per_workgroup: self.limits.max_compute_invocations_per_workgroup,
            min_storage_buffer_offset_alignment: self.limits.min_storage_buffer_offset_alignment,
            capabilities: self.caps,
        }
    }
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .field("capabilities", &self.caps)
            .finish()
    }
}

/// What [`GpuContext::report`] tells: adapter, backend, device type, limits and
/// the optional features in use.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextReport {
    /// Adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub adapter: String,
    /// Backend, e.g. `Vulkan`.
    pub backend: String,
    /// Device type, e.g. `Cpu` or `DiscreteGpu`.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Largest storage binding, in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest workgroup count per dispatch dimension.
    pub max_workgroups_per_dimension: u32,
    /// Largest workgroup size.
    pub max_invocations_per_workgroup: u32,
    /// Alignment of storage-buffer binding offsets, in bytes.
    pub min_storage_buffer_offset_alignment: u32,
    /// Optional capabilities in use.
    #[serde(serialize_with = "serialize_caps")]
    pub capabilities: Capabilities,
}

fn serialize_caps<S: serde::Serializer>(caps: &Capabilities, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(3))?;
    map.serialize_entry("subgroups", &caps.subgroups)?;
    map.serialize_entry("shader_f16", &caps.f16)?;
    map.serialize_entry("timestamp_query", &caps.timestamps)?;
    map.end()
}

impl fmt::Display for ContextReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "adapter      {}", self.adapter)?;
        writeln!(f, "backend      {} ({})", self.backend, self.device_type)?;
        writeln!(f, "driver       {}", self.driver)?;
        writeln!(
            f,
            "limits       binding {} MiB, buffer {} MiB, {} workgroups/dim, {} invocations/workgroup, offset alignment {} B",
            self.max_storage_buffer_binding_size >> 20,
            self.max_buffer_size >> 20,
            self.max_workgroups_per_dimension,
            self.max_invocations_per_workgroup,
            self.min_storage_buffer_offset_alignment
        )?;
        write!(
            f,
            "features     subgroups: {}, shader-f16: {}, timestamp-query: {}",
            self.capabilities.subgroups, self.capabilities.f16, self.capabilities.timestamps
        )
    }
}

/// Keeps the first of several GPU errors (later ones are usually its consequences).
fn record_error(slot: &Mutex<Option<String>>, message: String) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(message);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    const INVALID_WGSL: &str = "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }";

    fn module(ctx: &GpuContext, source: &str) -> wgpu::ShaderModule {
        ctx.device()
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("test"),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
    }

    fn pipeline(
        ctx: &GpuContext,
        module: &wgpu::ShaderModule,
        entry: &str,
    ) -> wgpu::ComputePipeline {
        ctx.device()
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    #[test]
    fn invalid_shaders_and_pipelines_are_errors_not_panics() {
        let ctx = GpuContext::new_blocking(&ContextOptions::default()).unwrap();
        let err = ctx
            .guarded("an invalid shader", || module(&ctx, INVALID_WGSL))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Gpu(m) if m.starts_with("an invalid shader")),
            "{err}"
        );

        let good = module(&ctx, "@compute @workgroup_size(1) fn main() {}");
        let err = ctx
            .guarded("a missing entry point", || pipeline(&ctx, &good, "absent"))
            .unwrap_err();
        assert!(matches!(err, Error::Gpu(_)), "{err}");
        ctx.guarded("a valid pipeline", || pipeline(&ctx, &good, "main"))
            .unwrap();
        ctx.check_lost().unwrap();

        // Outside every scope the error is recorded, not a panic, and reported once.
        let (_, error) = ctx.scoped("scoped", || module(&ctx, INVALID_WGSL));
        assert!(error.is_some());
        let _unscoped = module(&ctx, INVALID_WGSL);
        assert!(matches!(ctx.check_lost(), Err(Error::Gpu(_))));
        ctx.check_lost().unwrap();
    }
}
