//! The WGSL modules of the autograd ops and a per-device cache of their pipelines.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::GpuContext;

/// Invocations per workgroup of every nn kernel (`WG_SIZE` in the shaders).
pub const WG_SIZE: u32 = 256;
/// Rows and columns of C that one workgroup of the large matmul variant computes
/// (`TILE_M`, `TILE_N` of `nn_matmul.wgsl`).
pub const MATMUL_TILE: u32 = 128;
/// Tile of the small matmul variant, used when either side of C is at most this
/// (attention scores, classifier heads): 16 invocations of 8x8 outputs, `TILE_K` 16.
pub const MATMUL_SMALL_TILE: u32 = 32;

/// Tile of the medium matmul variant, used when either side of C is at most this
/// (ViT token projections with 64 features): 64 invocations of 8x8 outputs.
pub const MATMUL_MEDIUM_TILE: u32 = 64;

/// Constant declarations of `nn_matmul.wgsl` and their values in the medium variant.
const MATMUL_MEDIUM_CONSTANTS: [(&str, &str); 3] = [
    ("const TILE_M: u32 = 128u;", "const TILE_M: u32 = 64u;"),
    ("const TILE_N: u32 = 128u;", "const TILE_N: u32 = 64u;"),
    ("const WG_SIZE: u32 = 256u;", "const WG_SIZE: u32 = 64u;"),
];

/// Constant declarations of `nn_matmul.wgsl` and their values in the small variant.
const MATMUL_SMALL_CONSTANTS: [(&str, &str); 3] = [
    ("const TILE_M: u32 = 128u;", "const TILE_M: u32 = 32u;"),
    ("const TILE_N: u32 = 128u;", "const TILE_N: u32 = 32u;"),
    ("const WG_SIZE: u32 = 256u;", "const WG_SIZE: u32 = 16u;"),
];

/// The WGSL files, by name: every op kernel lives in one of them.
const SHADER_FILES: [(&str, &str); 6] = [
    ("nn_matmul", include_str!("../../shaders/nn_matmul.wgsl")),
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

/// Every shader module the ops use, by name, including the small and medium matmul
/// variants (derived from `nn_matmul.wgsl` by changing its tile constants).
pub fn shader_modules() -> Vec<(&'static str, String)> {
    let mut modules: Vec<(&str, String)> = SHADER_FILES
        .iter()
        .map(|(name, src)| (*name, src.to_string()))
        .collect();
    modules.push(("nn_matmul_small", matmul_variant(&MATMUL_SMALL_CONSTANTS)));
    modules.push(("nn_matmul_medium", matmul_variant(&MATMUL_MEDIUM_CONSTANTS)));
    modules
}

/// Index of the small matmul variant in [`shader_modules`].
const MATMUL_SMALL_MODULE: usize = SHADER_FILES.len();
/// Index of the medium matmul variant in [`shader_modules`].
const MATMUL_MEDIUM_MODULE: usize = SHADER_FILES.len() + 1;

fn matmul_variant(constants: &[(&str, &str)]) -> String {
    constants
        .iter()
        .fold(SHADER_FILES[0].1.to_string(), |src, (from, to)| {
            debug_assert!(src.contains(from), "nn_matmul.wgsl lost `{from}`");
            src.replace(from, to)
        })
}

/// One entry point of one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul,
    MatmulSmall,
    MatmulMedium,
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
            Matmul => (0, "matmul"),
            MatmulSmall => (MATMUL_SMALL_MODULE, "matmul"),
            MatmulMedium => (MATMUL_MEDIUM_MODULE, "matmul"),
            ActivationForward => (1, "activation_forward"),
            ActivationBackward => (1, "activation_backward"),
            AddForward => (1, "add_forward"),
            Accumulate => (1, "accumulate"),
            SumRows => (1, "sum_rows"),
            LayerNormForward => (2, "layernorm_forward"),
            LayerNormBackwardInput => (2, "layernorm_backward_input"),
            LayerNormBackwardParams => (2, "layernorm_backward_params"),
            SoftmaxForward => (3, "softmax_forward"),
            SoftmaxBackward => (3, "softmax_backward"),
            PatchifyForward => (4, "patchify_forward"),
            PatchifyBackward => (4, "patchify_backward"),
            PrependForward => (4, "prepend_forward"),
            PrependBackwardTokens => (4, "prepend_backward_tokens"),
            PrependBackwardToken => (4, "prepend_backward_token"),
            PoolForward => (4, "pool_forward"),
            PoolBackward => (4, "pool_backward"),
            CeForwardRows => (5, "ce_forward_rows"),
            CorrectRows => (5, "correct_rows"),
            ReduceSum => (5, "reduce_sum"),
            CeBackward => (5, "ce_backward"),
        }
    }
}

/// Compiled pipelines of the nn kernels for one device, created on first use and
/// shared by every graph built with it (share one per device: pipeline creation is
/// the slow part of building a graph).
#[derive(Debug)]
pub struct Kernels {
    ctx: GpuContext,
    modules: Mutex<HashMap<usize, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl Kernels {
    /// An empty cache for the context's device.
    pub fn new(ctx: &GpuContext) -> Self {
        Self {
            ctx: ctx.clone(),
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        }
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
