//! The WGSL modules of the autograd ops and a per-device cache of their pipelines.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::GpuContext;
use crate::error::Result;
use crate::nn::matmul_variant::{MatmulShader, MatmulVariant};
use crate::wgsl::{Part, ShaderBuilder, lib};

/// Invocations per workgroup of every nn kernel (`WG_SIZE` in the shaders).
pub const WG_SIZE: u32 = 256;
/// Invocations per workgroup of the row kernels (`ROW_WG_SIZE`, a generated constant)
/// under [`RowLayout::PerWorkgroup`]: one workgroup reduces one row of LayerNorm,
/// softmax or the cross-entropy loss.
pub const ROW_WG_SIZE: u32 = 64;

/// A flat-kernel file, which indexes its invocations with [`lib::GRID`].
const fn flat_kernels(name: &'static str, source: &'static str) -> Part {
    Part {
        name,
        source,
        provides: &[],
        requires: &["invocation_linear"],
    }
}

/// The flat-kernel files, by module name.
const SHADER_FILES: [(&str, Part); 3] = [
    (
        "nn_elementwise",
        flat_kernels(
            "nn_elementwise.wgsl",
            include_str!("../../shaders/nn_elementwise.wgsl"),
        ),
    ),
    (
        "nn_tokens",
        flat_kernels(
            "nn_tokens.wgsl",
            include_str!("../../shaders/nn_tokens.wgsl"),
        ),
    ),
    (
        "nn_attention",
        flat_kernels(
            "nn_attention.wgsl",
            include_str!("../../shaders/nn_attention.wgsl"),
        ),
    ),
];

/// A flat-kernel module: the generated `WG_SIZE`, the grid helpers and the file.
fn flat_module(name: &str, file: &'static Part) -> String {
    ShaderBuilder::new(name)
        .constant("WG_SIZE", WG_SIZE)
        .part(&lib::GRID)
        .part(file)
        .build()
        .expect("every part the flat kernels require is included")
}

/// A row-kernel file, which calls the reductions of [`ROWS_WORKGROUP`] or
/// [`ROWS_SUBGROUP`].
const fn row_kernels(name: &'static str, source: &'static str) -> Part {
    Part {
        name,
        source,
        provides: &[],
        requires: &[
            "row_sum",
            "row_max",
            "workgroup_linear",
            "invocation_linear",
        ],
    }
}

/// The row-kernel files, each compiled twice (names of the workgroup and the
/// subgroup module, the file).
const ROW_SHADER_FILES: [(&str, &str, Part); 3] = [
    (
        "nn_layernorm",
        "nn_layernorm_subgroup",
        row_kernels(
            "nn_layernorm.wgsl",
            include_str!("../../shaders/nn_layernorm.wgsl"),
        ),
    ),
    (
        "nn_softmax",
        "nn_softmax_subgroup",
        row_kernels(
            "nn_softmax.wgsl",
            include_str!("../../shaders/nn_softmax.wgsl"),
        ),
    ),
    (
        "nn_loss",
        "nn_loss_subgroup",
        row_kernels("nn_loss.wgsl", include_str!("../../shaders/nn_loss.wgsl")),
    ),
];

/// Reductions across a workgroup through workgroup memory (no subgroups needed).
const ROWS_WORKGROUP: Part = Part {
    name: "nn_rows_workgroup.wgsl",
    source: include_str!("../../shaders/nn_rows_workgroup.wgsl"),
    provides: &["row_sum", "row_max"],
    requires: &[],
};

/// Reductions across a workgroup with subgroup operations.
const ROWS_SUBGROUP: Part = Part {
    name: "nn_rows_subgroup.wgsl",
    source: include_str!("../../shaders/nn_rows_subgroup.wgsl"),
    provides: &["row_sum", "row_max"],
    requires: &[],
};

/// A row-kernel module: the generated `WG_SIZE` and `ROW_WG_SIZE`, the grid helpers,
/// one of the two reductions, and the file.
fn row_module(name: &str, file: &'static Part, subgroups: bool) -> String {
    let reduction = match subgroups {
        true => &ROWS_SUBGROUP,
        false => &ROWS_WORKGROUP,
    };
    ShaderBuilder::new(name)
        .constant("WG_SIZE", WG_SIZE)
        .constant("ROW_WG_SIZE", ROW_WG_SIZE)
        .part(&lib::GRID)
        .part(reduction)
        .part(file)
        .build()
        .expect("every part the row kernels require is included")
}

/// Every shader module the ops use, by name: the flat-kernel files, every specialization
/// of every matmul variant (see [`MatmulVariant`]), and each row-kernel file with the
/// workgroup and with the subgroup reduction.
pub fn shader_modules() -> Vec<(&'static str, String)> {
    let mut modules: Vec<(&str, String)> = SHADER_FILES
        .iter()
        .map(|(name, file)| (*name, flat_module(name, file)))
        .collect();
    modules.extend(MatmulShader::ALL.iter().map(|s| (s.name, s.source())));
    for (workgroup_name, subgroup_name, file) in &ROW_SHADER_FILES {
        modules.push((workgroup_name, row_module(workgroup_name, file, false)));
        modules.push((subgroup_name, row_module(subgroup_name, file, true)));
    }
    modules
}

/// Index of the first row-kernel module in [`shader_modules`].
const ROW_MODULES: usize = SHADER_FILES.len() + MatmulShader::ALL.len();

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

/// Where a kernel's module is in [`shader_modules`].
#[derive(Debug, Clone, Copy)]
enum ModuleRef {
    /// At this index, on every device.
    Fixed(usize),
    /// Row-kernel file `i` of [`ROW_SHADER_FILES`], with the subgroup reduction when
    /// the context has subgroups.
    Rows(usize),
}

impl ModuleRef {
    fn index(self, subgroups: bool) -> usize {
        match self {
            ModuleRef::Fixed(i) => i,
            ModuleRef::Rows(i) => ROW_MODULES + 2 * i + usize::from(subgroups),
        }
    }
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
    AttentionForward,
    AttentionBackwardQuery,
    AttentionBackwardKey,
}

impl Kernel {
    /// The module and the entry point.
    fn location(self) -> (ModuleRef, &'static str) {
        use Kernel::*;
        use ModuleRef::{Fixed, Rows};
        match self {
            Matmul(shader) => (Fixed(SHADER_FILES.len() + shader.index()), "matmul"),
            ActivationForward => (Fixed(0), "activation_forward"),
            ActivationBackward => (Fixed(0), "activation_backward"),
            AddForward => (Fixed(0), "add_forward"),
            Accumulate => (Fixed(0), "accumulate"),
            SumRows => (Fixed(0), "sum_rows"),
            PatchifyForward => (Fixed(1), "patchify_forward"),
            PatchifyBackward => (Fixed(1), "patchify_backward"),
            PrependForward => (Fixed(1), "prepend_forward"),
            PrependBackwardTokens => (Fixed(1), "prepend_backward_tokens"),
            PrependBackwardToken => (Fixed(1), "prepend_backward_token"),
            PoolForward => (Fixed(1), "pool_forward"),
            PoolBackward => (Fixed(1), "pool_backward"),
            AttentionForward => (Fixed(2), "attention_forward"),
            AttentionBackwardQuery => (Fixed(2), "attention_backward_query"),
            AttentionBackwardKey => (Fixed(2), "attention_backward_key"),
            LayerNormForward => (Rows(0), "layernorm_forward"),
            LayerNormBackwardInput => (Rows(0), "layernorm_backward_input"),
            LayerNormBackwardParams => (Rows(0), "layernorm_backward_params"),
            SoftmaxForward => (Rows(1), "softmax_forward"),
            SoftmaxBackward => (Rows(1), "softmax_backward"),
            CeForwardRows => (Rows(2), "ce_forward_rows"),
            CorrectRows => (Rows(2), "correct_rows"),
            ReduceSum => (Rows(2), "reduce_sum"),
            CeBackward => (Rows(2), "ce_backward"),
        }
    }

    /// The entry point under a row layout: the row kernels have a per-invocation
    /// twin (`<entry>_per_invocation`).
    fn entry(self, layout: RowLayout) -> &'static str {
        use Kernel::*;
        let (_, entry) = self.location();
        if layout == RowLayout::PerWorkgroup {
            return entry;
        }
        match self {
            LayerNormForward => "layernorm_forward_per_invocation",
            LayerNormBackwardInput => "layernorm_backward_input_per_invocation",
            LayerNormBackwardParams => "layernorm_backward_params_per_invocation",
            SoftmaxForward => "softmax_forward_per_invocation",
            SoftmaxBackward => "softmax_backward_per_invocation",
            CeForwardRows => "ce_forward_rows_per_invocation",
            _ => entry,
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
    modules: Mutex<HashMap<usize, wgpu::ShaderModule>>,
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
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    /// These kernels with the row kernels forced to `rows` (tests run each layout).
    pub fn with_row_layout(mut self, rows: RowLayout) -> Self {
        self.rows = rows;
        self
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

    /// The pipeline of a kernel, compiling it on first use inside error scopes
    /// ([`GpuContext::scoped`]).
    pub(crate) fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipelines.get(&kernel) {
            return p.clone();
        }
        let (module, _) = kernel.location();
        let module_index = module.index(self.ctx.capabilities().subgroups);
        let entry = kernel.entry(self.rows);
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
