//! The WGSL modules of the autograd ops and a per-device cache of their pipelines.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::GpuContext;
use crate::error::Result;
use crate::nn::matmul_variant::{MatmulShader, MatmulVariant};

/// Invocations per workgroup of every nn kernel (`WG_SIZE` in the shaders).
pub const WG_SIZE: u32 = 256;
/// The WGSL files, by name: every op kernel lives in one of them.
const SHADER_FILES: [(&str, &str); 5] = [
    (
        "nn_elementwise",
        include_str!("../../shaders/nn_elementwise.wgsl"),
    ),
    (
        "nn_layernorm",
        include_str!("../../shaders/nn_layernorm.wgsl"),
    ),
    ("nn_softmax", include_str!("../../shaders/nn_softmax.wgsl")),
    ("nn_tokens", include_str!("../../shaders/nn_tokens.wgsl")),
    ("nn_loss", include_str!("../../shaders/nn_loss.wgsl")),
];

/// Every shader module the ops use, by name, including every specialization of every
/// matmul variant (see [`MatmulVariant`]).
pub fn shader_modules() -> Vec<(&'static str, String)> {
    let mut modules: Vec<(&str, String)> = SHADER_FILES
        .iter()
        .map(|(name, src)| (*name, src.to_string()))
        .collect();
    modules.extend(MatmulShader::ALL.iter().map(|s| (s.name, s.source())));
    modules
}

/// One entry point of one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul(MatmulShader),
    ActivationForward,
    ActivationBackward,
    AddForward,
    Accumulate,
    SumRows,
    LayerNormForward,
    LayerNormBackwardInput,
    LayerNormBackwardParams,
    SoftmaxForward,
    SoftmaxBackward,
    PatchifyForward,
    PatchifyBackward,
    PrependForward,
    PrependBackwardTokens,
    PrependBackwardToken,
    PoolForward,
    PoolBackward,
    CeForwardRows,
    CorrectRows,
    ReduceSum,
    CeBackward,
}

impl Kernel {
    /// Index into [`shader_modules`] and the entry point.
    fn location(self) -> (usize, &'static str) {
        use Kernel::*;
        match self {
            Matmul(shader) => (SHADER_FILES.len() + shader.index(), "matmul"),
            ActivationForward => (0, "activation_forward"),
            ActivationBackward => (0, "activation_backward"),
            AddForward => (0, "add_forward"),
            Accumulate => (0, "accumulate"),
            SumRows => (0, "sum_rows"),
            LayerNormForward => (1, "layernorm_forward"),
            LayerNormBackwardInput => (1, "layernorm_backward_input"),
            LayerNormBackwardParams => (1, "layernorm_backward_params"),
            SoftmaxForward => (2, "softmax_forward"),
            SoftmaxBackward => (2, "softmax_backward"),
            PatchifyForward => (3, "patchify_forward"),
            PatchifyBackward => (3, "patchify_backward"),
            PrependForward => (3, "prepend_forward"),
            PrependBackwardTokens => (3, "prepend_backward_tokens"),
            PrependBackwardToken => (3, "prepend_backward_token"),
            PoolForward => (3, "pool_forward"),
            PoolBackward => (3, "pool_backward"),
            CeForwardRows => (4, "ce_forward_rows"),
            CorrectRows => (4, "correct_rows"),
            ReduceSum => (4, "reduce_sum"),
            CeBackward => (4, "ce_backward"),
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
    modules: Mutex<HashMap<usize, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl Kernels {
    /// An empty cache for the context's device, with the matmul variant chosen for
    /// its adapter ([`MatmulVariant::for_context`]).
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
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    /// The matmul variant of every graph built with these kernels.
    pub fn matmul_variant(&self) -> MatmulVariant {
        self.matmul
    }

    /// The context the pipelines belong to.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The pipeline of a kernel, compiling it on first use inside error scopes
    /// ([`GpuContext::scoped`]).
    pub(crate) fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipelines.get(&kernel) {
            return p.clone();
        }
        let (module_index, entry) = kernel.location();
        let device = self.ctx.device();
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            modules
                .entry(module_index)
                .or_insert_with(|| {
                    let (name, source) = shader_modules().swap_remove(module_index);
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(name),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    })
                })
                .clone()
        };
        let (pipeline, error) = self.ctx.scoped(entry, || {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
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
