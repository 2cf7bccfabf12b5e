//! The WGSL modules of the nn ops and the table of their kernels: which module and
//! entry point each [`Kernel`] is, and which buffers it binds.
//!
//! Every module is assembled by [`ShaderBuilder`]: generated constants, the file's
//! uniform block and bindings (its [`Family`]), the shared helpers from `shaders/lib/`,
//! then the kernel file. A row-kernel file (LayerNorm, softmax, the loss) is compiled
//! once per [`RowTeam`], the way its rows are spread over invocations.

use crate::nn::bindings::*;
use crate::nn::kernels::{ROW_WG_SIZE, RowLayout, WG_SIZE};
use crate::nn::matmul_variant::MatmulShader;
use crate::nn::ops;
use crate::nn::ops::FUSED_MAX_HEAD_DIM;
use crate::wgsl::{Part, ShaderBuilder, lib, shader_part};

/// A kernel file of the nn ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum File {
    Elementwise,
    Tokens,
    Attention,
    Rope,
    Embedding,
    LayerNorm,
    Softmax,
    Loss,
}

/// What a flat-kernel file calls from `shaders/lib/`.
const FLAT_NEEDS: &[&str] = &["flat_index", "accumulated"];

static ELEMENTWISE: Part = shader_part!("nn_elementwise.wgsl", &[], FLAT_NEEDS);
static TOKENS: Part = shader_part!("nn_tokens.wgsl", &[], FLAT_NEEDS);
static ATTENTION: Part = shader_part!("nn_attention.wgsl", &[], FLAT_NEEDS);
static ROPE: Part = shader_part!("nn_rope.wgsl", &[], FLAT_NEEDS);
static EMBEDDING: Part = shader_part!("nn_embedding.wgsl", &[], FLAT_NEEDS);
static LAYERNORM: Part = shader_part!(
    "nn_layernorm.wgsl",
    &[],
    &["row_index", "row_sum", "accumulated"]
);
static SOFTMAX: Part = shader_part!(
    "nn_softmax.wgsl",
    &[],
    &["row_index", "row_max_sum_exp", "accumulated"]
);
static LOSS: Part = shader_part!(
    "nn_loss.wgsl",
    &[],
    &["row_max_sum_exp", "workgroup_sum", "flat_index"]
);

impl File {
    const FLAT: [File; 5] = [
        File::Elementwise,
        File::Tokens,
        File::Attention,
        File::Rope,
        File::Embedding,
    ];
    const ROWS: [File; 3] = [File::LayerNorm, File::Softmax, File::Loss];

    /// The helpers from `shaders/lib/` the file's modules include (besides a row
    /// team).
    fn lib_parts(self) -> &'static [&'static Part] {
        match self {
            File::Softmax => &[&lib::GRID, &lib::ACCUMULATE, &lib::ROW_LOGSUMEXP],
            File::Loss => &[
                &lib::GRID,
                &lib::ACCUMULATE,
                &lib::ROW_LOGSUMEXP,
                &lib::WORKGROUP_SUM,
            ],
            _ => &[&lib::GRID, &lib::ACCUMULATE],
        }
    }

    /// The file and the bindings it reads by name.
    fn part_and_family(self) -> (&'static Part, &'static Family) {
        match self {
            File::Elementwise => (&ELEMENTWISE, &ops::ELEMENTWISE),
            File::Tokens => (&TOKENS, &ops::TOKENS),
            File::Attention => (&ATTENTION, &ops::ATTENTION),
            File::Rope => (&ROPE, &ops::ROPE),
            File::Embedding => (&EMBEDDING, &ops::EMBEDDING),
            File::LayerNorm => (&LAYERNORM, &ops::LAYERNORM),
            File::Softmax => (&SOFTMAX, &ops::SOFTMAX),
            File::Loss => (&LOSS, &ops::LOSS),
        }
    }

    /// The module of this file's kernels under `team` (which only row files heed).
    fn module(self, team: RowTeam) -> Module {
        match Self::ROWS.contains(&self) {
            true => Module::Rows(self, team),
            false => Module::Flat(self),
        }
    }
}

/// How a row-kernel module spreads a row over invocations (the row-team parts of
/// `shaders/lib/`, see `rows_team.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RowTeam {
    /// One workgroup per row, reducing through workgroup memory.
    Workgroup,
    /// One workgroup per row, reducing with subgroup operations.
    Subgroup,
    /// One invocation per row.
    Invocation,
}

impl RowTeam {
    const ALL: [RowTeam; 3] = [RowTeam::Workgroup, RowTeam::Subgroup, RowTeam::Invocation];

    /// The team for a row layout on a device with or without subgroups.
    pub fn new(layout: RowLayout, subgroups: bool) -> Self {
        match (layout, subgroups) {
            (RowLayout::PerInvocation, _) => RowTeam::Invocation,
            (RowLayout::PerWorkgroup, true) => RowTeam::Subgroup,
            (RowLayout::PerWorkgroup, false) => RowTeam::Workgroup,
        }
    }

    /// Invocations per workgroup of a row entry point and invocations per row.
    fn sizes(self) -> (u32, u32) {
        match self {
            RowTeam::Invocation => (WG_SIZE, 1),
            RowTeam::Workgroup | RowTeam::Subgroup => (ROW_WG_SIZE, ROW_WG_SIZE),
        }
    }

    fn parts(self) -> &'static [&'static Part] {
        match self {
            RowTeam::Workgroup => &[&lib::ROWS_TEAM, &lib::ROWS_WORKGROUP],
            RowTeam::Subgroup => &[&lib::ROWS_TEAM, &lib::ROWS_SUBGROUP],
            RowTeam::Invocation => &[&lib::ROWS_INVOCATION],
        }
    }
}

/// One WGSL module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Module {
    /// A flat-kernel file.
    Flat(File),
    /// A specialization of a matmul variant.
    Matmul(MatmulShader),
    /// A row-kernel file with one row team.
    Rows(File, RowTeam),
}

impl Module {
    /// Every module: the flat files, every matmul specialization, each row file with
    /// each row team.
    fn all() -> Vec<Module> {
        let flat = File::FLAT.map(Module::Flat);
        let matmul = MatmulShader::ALL.map(Module::Matmul);
        let rows = File::ROWS.map(|f| RowTeam::ALL.map(move |t| Module::Rows(f, t)));
        flat.into_iter()
            .chain(matmul)
            .chain(rows.into_iter().flatten())
            .collect()
    }

    /// The module's name (its label in wgpu errors).
    pub fn name(self) -> &'static str {
        use {File::*, RowTeam::*};
        match self {
            Module::Flat(Elementwise) => "nn_elementwise",
            Module::Flat(Tokens) => "nn_tokens",
            Module::Flat(Rope) => "nn_rope",
            Module::Flat(Attention) => "nn_attention",
            Module::Flat(_) => "nn_embedding",
            Module::Matmul(shader) => shader.name,
            Module::Rows(LayerNorm, Workgroup) => "nn_layernorm",
            Module::Rows(LayerNorm, Subgroup) => "nn_layernorm_subgroup",
            Module::Rows(LayerNorm, Invocation) => "nn_layernorm_per_invocation",
            Module::Rows(Softmax, Workgroup) => "nn_softmax",
            Module::Rows(Softmax, Subgroup) => "nn_softmax_subgroup",
            Module::Rows(Softmax, Invocation) => "nn_softmax_per_invocation",
            Module::Rows(_, Workgroup) => "nn_loss",
            Module::Rows(_, Subgroup) => "nn_loss_subgroup",
            Module::Rows(_, Invocation) => "nn_loss_per_invocation",
        }
    }

    /// The bindings the module declares.
    pub fn family(self) -> &'static Family {
        match self {
            Module::Flat(file) | Module::Rows(file, _) => file.part_and_family().1,
            Module::Matmul(_) => &ops::MATMUL,
        }
    }

    /// The module's WGSL.
    pub fn source(self) -> String {
        let module = match self {
            // The variant's constants and files (src/nn/matmul_variant.rs).
            Module::Matmul(shader) => shader.module(),
            Module::Flat(file) => Self::with_file(ShaderBuilder::new(self.name()), file),
            Module::Rows(file, team) => {
                let (wg_size, lanes) = team.sizes();
                let mut module = ShaderBuilder::new(self.name())
                    .constant("ROW_WG_SIZE", wg_size)
                    .constant("ROW_LANES", lanes);
                for part in team.parts() {
                    module = module.part(part);
                }
                Self::with_file(module, file)
            }
        };
        self.family()
            .declare(module)
            .build()
            .expect("every part an nn module requires is included (tested)")
    }

    /// `module` with `WG_SIZE`, the file's helpers and the file.
    fn with_file(module: ShaderBuilder, file: File) -> ShaderBuilder {
        let mut module = module.constant("WG_SIZE", WG_SIZE);
        if file == File::Attention {
            module = module.constant("MAX_HEAD_DIM", FUSED_MAX_HEAD_DIM as u32);
        }
        for part in file.lib_parts() {
            module = module.part(part);
        }
        module.part(file.part_and_family().0)
    }
}

/// Every shader module the ops use, by name: the flat-kernel files, every
/// specialization of every matmul variant (see
/// [`MatmulVariant`](crate::nn::MatmulVariant)), and each row-kernel file with each
/// row team (workgroup memory, subgroups, one invocation per row).
pub fn shader_modules() -> Vec<(&'static str, String)> {
    Module::all()
        .into_iter()
        .map(|m| (m.name(), m.source()))
        .collect()
}

/// How a kernel's workgroups cover its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grid {
    /// One invocation per element (or column, or row) over `WG_SIZE` workgroups.
    Flat,
    /// One row team per row.
    Rows,
    /// One workgroup.
    Single,
    /// Chosen by the matmul specialization.
    Matmul,
}

/// `file_kernels!(Name, ...)`: the [`Kernel`] enum, the matmul and one variant per
/// entry point of the kernel files, and `Kernel::FILE_KERNELS` listing the latter.
macro_rules! file_kernels {
    ($($kernel:ident),* $(,)?) => {
        /// One entry point of one module.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Kernel {
            /// The one entry point of a matmul specialization.
            Matmul(MatmulShader),
            $($kernel),*
        }

        impl Kernel {
            /// Every kernel of the nn files (the matmuls aside).
            #[cfg(test)]
            pub const FILE_KERNELS: &[Kernel] = &[$(Kernel::$kernel),*];
        }
    };
}

file_kernels!(
    ActivationForward,
    ActivationBackward,
    AddForward,
    Accumulate,
    SumRows,
    SiluGateForward,
    SiluGateBackwardGate,
    SiluGateBackwardUp,
    LayerNormForward,
    LayerNormBackwardInput,
    LayerNormBackwardParams,
    RmsNormForward,
    RmsNormBackwardInput,
    RopeForward,
    RopeBackward,
    SoftmaxForward,
    SoftmaxBackward,
    PatchifyForward,
    PatchifyBackward,
    PrependForward,
    PrependBackwardTokens,
    PrependBackwardToken,
    PoolForward,
    PoolBackward,
    GatherTokensForward,
    UnshuffleForward,
    GatherTokensBackward,
    UnshuffleBackwardFill,
    CeForwardRows,
    CorrectRows,
    ReduceSum,
    CeBackward,
    MseForwardRows,
    ReduceRatio,
    MseBackward,
    AttentionForward,
    AttentionBackwardQuery,
    AttentionBackwardKey,
    AttentionBackwardValue,
    EmbeddingForward,
    EmbeddingIndex,
    EmbeddingBackward,
);

impl Kernel {
    /// The kernel's module under `team` and its entry point.
    pub fn entry(self, team: RowTeam) -> (Module, &'static str) {
        use Kernel::*;
        let (file, entry) = match self {
            Matmul(shader) => return (Module::Matmul(shader), "matmul"),
            ActivationForward => (File::Elementwise, "activation_forward"),
            ActivationBackward => (File::Elementwise, "activation_backward"),
            AddForward => (File::Elementwise, "add_forward"),
            Accumulate => (File::Elementwise, "accumulate"),
            SumRows => (File::Elementwise, "sum_rows"),
            SiluGateForward => (File::Elementwise, "silu_gate_forward"),
            SiluGateBackwardGate => (File::Elementwise, "silu_gate_backward_gate"),
            SiluGateBackwardUp => (File::Elementwise, "silu_gate_backward_up"),
            RopeForward => (File::Rope, "rope_forward"),
            RopeBackward => (File::Rope, "rope_backward"),
            PatchifyForward => (File::Tokens, "patchify_forward"),
            PatchifyBackward => (File::Tokens, "patchify_backward"),
            PrependForward => (File::Tokens, "prepend_forward"),
            PrependBackwardTokens => (File::Tokens, "prepend_backward_tokens"),
            PrependBackwardToken => (File::Tokens, "prepend_backward_token"),
            PoolForward => (File::Tokens, "pool_forward"),
            PoolBackward => (File::Tokens, "pool_backward"),
            GatherTokensForward => (File::Tokens, "gather_tokens_forward"),
            UnshuffleForward => (File::Tokens, "unshuffle_forward"),
            GatherTokensBackward => (File::Tokens, "gather_tokens_backward"),
            UnshuffleBackwardFill => (File::Tokens, "unshuffle_backward_fill"),
            AttentionForward => (File::Attention, "attention_forward"),
            AttentionBackwardQuery => (File::Attention, "attention_backward_query"),
            AttentionBackwardKey => (File::Attention, "attention_backward_key"),
            AttentionBackwardValue => (File::Attention, "attention_backward_value"),
            EmbeddingForward => (File::Embedding, "embedding_forward"),
            EmbeddingIndex => (File::Embedding, "embedding_index"),
            EmbeddingBackward => (File::Embedding, "embedding_backward"),
            LayerNormForward => (File::LayerNorm, "layernorm_forward"),
            LayerNormBackwardInput => (File::LayerNorm, "layernorm_backward_input"),
            LayerNormBackwardParams => (File::LayerNorm, "layernorm_backward_params"),
            RmsNormForward => (File::LayerNorm, "rmsnorm_forward"),
            RmsNormBackwardInput => (File::LayerNorm, "rmsnorm_backward_input"),
            SoftmaxForward => (File::Softmax, "softmax_forward"),
            SoftmaxBackward => (File::Softmax, "softmax_backward"),
            CeForwardRows => (File::Loss, "ce_forward_rows"),
            CorrectRows => (File::Loss, "correct_rows"),
            ReduceSum => (File::Loss, "reduce_sum"),
            CeBackward => (File::Loss, "ce_backward"),
            MseForwardRows => (File::Loss, "mse_forward_rows"),
            ReduceRatio => (File::Loss, "reduce_ratio"),
            MseBackward => (File::Loss, "mse_backward"),
        };
        (file.module(team), entry)
    }

    /// The buffers the entry point binds besides `params`: its bind group layout.
    pub fn buffers(self) -> &'static [Binding] {
        use Kernel::*;
        match self {
            Matmul(_) => &[A, B, BIAS, C],
            ActivationForward | PatchifyForward | PoolForward => &[X, OUT],
            ActivationBackward | SiluGateBackwardUp => &[X, DY, OUT],
            AddForward | PrependForward | SiluGateForward => &[X, OTHER, OUT],
            SiluGateBackwardGate => &[X, OTHER, DY, OUT],
            RopeForward => &[X, COS_SIN, OUT],
            RopeBackward => &[DY, COS_SIN, OUT],
            Accumulate | SumRows | PatchifyBackward | PoolBackward => &[DY, OUT],
            PrependBackwardTokens | PrependBackwardToken => &[DY, OUT],
            GatherTokensForward => &[X, IDS, OUT],
            UnshuffleForward => &[X, OTHER, IDS, OUT],
            GatherTokensBackward | UnshuffleBackwardFill => &[IDS, DY, OUT],
            AttentionForward => &[Q, K, V, OUT, PROBS],
            AttentionBackwardQuery => &[K, V, OUT, PROBS, D_OUT, D_SCORES, D_QKV],
            AttentionBackwardKey | AttentionBackwardValue => &[Q, PROBS, D_OUT, D_SCORES, D_QKV],
            EmbeddingForward => &[WEIGHT, IDS, OUT],
            EmbeddingIndex => &[IDS, TOKEN_INDEX],
            EmbeddingBackward => &[DY, TOKEN_INDEX, DWEIGHT],
            LayerNormForward => &[X, WEIGHT, BIAS, Y, STATS],
            LayerNormBackwardInput | RmsNormBackwardInput => &[X, WEIGHT, STATS, DY, DX],
            RmsNormForward => &[X, WEIGHT, Y, STATS],
            LayerNormBackwardParams => &[X, STATS, DY, DWEIGHT, DBIAS],
            SoftmaxForward => &[X, Y],
            SoftmaxBackward => &[Y, DY, DX],
            CeForwardRows | CorrectRows => &[X, LABELS, ROWS],
            ReduceSum => &[ROWS, OUT],
            CeBackward => &[X, LABELS, ROWS, DLOSS, DX],
            MseForwardRows => &[X, TARGET, MASK, ROWS],
            ReduceRatio => &[ROWS, OUT],
            MseBackward => &[X, TARGET, ROWS, DLOSS, DX],
        }
    }

    /// How the kernel's workgroups cover its work.
    pub fn grid(self) -> Grid {
        use Kernel::*;
        match self {
            Matmul(_) => Grid::Matmul,
            LayerNormForward | LayerNormBackwardInput | LayerNormBackwardParams => Grid::Rows,
            RmsNormForward | RmsNormBackwardInput => Grid::Rows,
            SoftmaxForward | SoftmaxBackward | CeForwardRows => Grid::Rows,
            ReduceSum | ReduceRatio => Grid::Single,
            _ => Grid::Flat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binding indices each entry point of `source` uses, by entry point name.
    fn used_bindings(source: &str) -> Vec<(String, Vec<u32>)> {
        let module = naga::front::wgsl::parse_str(source).expect("parses");
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .expect("validates");
        let entries = module.entry_points.iter().enumerate();
        entries
            .map(|(i, ep)| {
                let uses = info.get_entry_point(i);
                let globals = module.global_variables.iter();
                let mut used: Vec<u32> = globals
                    .filter(|(handle, _)| !uses[*handle].is_empty())
                    .filter_map(|(_, var)| var.binding.as_ref().map(|b| b.binding))
                    .collect();
                used.sort_unstable();
                (ep.name.clone(), used)
            })
            .collect()
    }

    /// Every entry point of every module is a kernel of the table, and the layout the
    /// table gives it (`params` and [`Kernel::buffers`]) is exactly the bindings it
    /// uses, under every row team.
    #[test]
    fn every_kernel_binds_exactly_what_its_entry_point_uses() {
        let kernels: Vec<Kernel> = Kernel::FILE_KERNELS
            .iter()
            .copied()
            .chain(MatmulShader::ALL.map(Kernel::Matmul))
            .collect();
        for module in Module::all() {
            for (entry, used) in used_bindings(&module.source()) {
                let kernel = kernels.iter().find(|k| {
                    RowTeam::ALL
                        .iter()
                        .any(|&team| k.entry(team) == (module, entry.as_str()))
                });
                let kernel =
                    kernel.unwrap_or_else(|| panic!("{}: `{entry}` is in no table", module.name()));
                let family = module.family();
                let mut listed: Vec<u32> = std::iter::once(PARAMS)
                    .chain(kernel.buffers().iter().copied())
                    .map(|b| family.index(b))
                    .collect();
                listed.sort_unstable();
                assert_eq!(used, listed, "{}: {entry}", module.name());
            }
        }
    }

    #[test]
    fn every_row_team_has_its_module() {
        for team in RowTeam::ALL {
            let (module, _) = Kernel::SoftmaxForward.entry(team);
            assert_eq!(module, Module::Rows(File::Softmax, team));
            let (module, _) = Kernel::AddForward.entry(team);
            assert_eq!(module, Module::Flat(File::Elementwise));
        }
    }
}
