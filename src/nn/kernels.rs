//! A per-device cache of the nn kernels' pipelines, each with an explicit layout
//! built from its binding table.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::GpuContext;
use crate::error::Result;
use crate::nn::bindings::PARAMS;
use crate::nn::matmul_variant::MatmulVariant;
use crate::nn::modules::{Kernel, Module, RowTeam};
use crate::nn::ops::FUSED_MAX_TOKENS;
use crate::setters::setters;

/// Invocations per workgroup of every nn kernel (`WG_SIZE` in the shaders).
pub const WG_SIZE: u32 = 256;
/// Invocations per workgroup of the row kernels (`ROW_WG_SIZE`, a generated constant)
/// under [`RowLayout::PerWorkgroup`]: one workgroup reduces one row of LayerNorm,
/// softmax or the cross-entropy loss. (Under [`RowLayout::PerInvocation`] they run
/// [`WG_SIZE`] invocations per workgroup, one per row.)
pub const ROW_WG_SIZE: u32 = 64;

/// How the row kernels (LayerNorm, softmax, cross-entropy rows) spread a row over
/// invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowLayout {
    /// One workgroup of [`ROW_WG_SIZE`] invocations per row, reducing with subgroup
    /// operations where the context has them (workgroup memory otherwise): the GPU
    /// design.
    PerWorkgroup,
    /// One invocation per row, no barriers: faster on CPU adapters (lavapipe,
    /// SwiftShader), where barriers are expensive and rows are short.
    PerInvocation,
}

impl RowLayout {
    /// [`RowLayout::PerInvocation`] on CPU adapters, [`RowLayout::PerWorkgroup`]
    /// elsewhere.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        match info.device_type {
            wgpu::DeviceType::Cpu => RowLayout::PerInvocation,
            _ => RowLayout::PerWorkgroup,
        }
    }
}

/// Compiled pipelines of the nn kernels for one device, created on first use and
/// shared by every graph built with it (share one per device: pipeline creation is
/// the slow part of building a graph).
#[derive(Debug)]
pub struct Kernels {
    ctx: GpuContext,
    matmul: MatmulVariant,
    rows: RowLayout,
    fused_attention_max: usize,
    modules: Mutex<HashMap<Module, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl Kernels {
    /// An empty cache for the context's device, with the matmul variant and the row
    /// layout chosen for its adapter ([`MatmulVariant::for_context`],
    /// [`RowLayout::for_adapter`]).
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_variant(ctx, MatmulVariant::for_context(ctx))
    }

    /// An empty cache whose matmuls use `variant` (to compare or test variants);
    /// [`Error::MissingFeature`](crate::Error::MissingFeature) or
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when the device cannot
    /// run it.
    pub fn with_matmul(ctx: &GpuContext, variant: MatmulVariant) -> Result<Self> {
        variant.check(ctx)?;
        Ok(Self::with_variant(ctx, variant))
    }

    fn with_variant(ctx: &GpuContext, matmul: MatmulVariant) -> Self {
        Self {
            ctx: ctx.clone(),
            matmul,
            rows: RowLayout::for_adapter(ctx.adapter_info()),
            fused_attention_max: FUSED_MAX_TOKENS,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    setters! {
        /// These kernels with the row kernels forced to `rows` (tests run each layout).
        with_row_layout(rows: RowLayout);
        /// These kernels with attention over at most `fused_attention_max` tokens run
        /// fused (heads of at most 32 features) and longer sequences as matmuls
        /// (benchmarks and tests compare both paths; the default is the fused
        /// kernels' cut-over, 24 tokens).
        with_fused_attention_max(fused_attention_max: usize);
    }

    /// Longest sequence whose attention runs through the fused kernels.
    pub fn fused_attention_max(&self) -> usize {
        self.fused_attention_max
    }

    /// How the row kernels spread a row over invocations.
    pub fn row_layout(&self) -> RowLayout {
        self.rows
    }

    /// The matmul variant of every graph built with these kernels.
    pub fn matmul_variant(&self) -> MatmulVariant {
        self.matmul
    }

    /// The context the pipelines belong to.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The row team of the row kernels' modules on this device.
    fn row_team(&self) -> RowTeam {
        RowTeam::new(self.rows, self.ctx.capabilities().subgroups)
    }

    /// The module a kernel's entry point is in on this device.
    pub(crate) fn module_of(&self, kernel: Kernel) -> Module {
        kernel.entry(self.row_team()).0
    }

    /// The pipeline of a kernel, compiling it on first use inside error scopes
    /// ([`GpuContext::scoped`]), with the bind group layout of the buffers it binds
    /// ([`Kernel::buffers`]) from its module's binding table.
    pub(crate) fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipelines.get(&kernel) {
            return p.clone();
        }
        let (module, entry) = kernel.entry(self.row_team());
        let device = self.ctx.device();
        let shader = {
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            modules
                .entry(module)
                .or_insert_with(|| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(module.name()),
                        source: wgpu::ShaderSource::Wgsl(module.source().into()),
                    })
                })
                .clone()
        };
        let (pipeline, error) = self.ctx.scoped(entry, || {
            let family = module.family();
            let entries: Vec<_> = std::iter::once(PARAMS)
                .chain(kernel.buffers().iter().copied())
                .map(|b| family.layout_entry(b))
                .collect();
            let bind_group_layout =
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(entry),
                    entries: &entries,
                });
            let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(&bind_group_layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&layout),
                module: &shader,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        });
        // A failed pipeline is not cached; its error stops the model's next record
        // (which checks the context after compiling its graph).
        match error {
            Some(e) => self.ctx.record_error(&e),
            None => {
                pipelines.insert(kernel, pipeline.clone());
            }
        }
        pipeline
    }
}
