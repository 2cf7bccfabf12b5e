//! The matmul kernel families ([`MatmulVariant`]), their specializations
//! ([`MatmulShader`]: tile sizes per shape class) and the WGSL source of each.
//!
//! A module is `generated constants + nn_matmul_common.wgsl + kernel files`: the
//! kernel files never declare the constants generated here.

use super::matmul_blocks::{column_block, rows_block};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// A matmul file: its function contracts are checked by naga in the tests, not
/// declared here.
macro_rules! matmul_part {
    ($file:literal) => {
        shader_part!($file, &[], &[])
    };
}

/// Bindings, parameters and the batched, strided indexing every variant shares.
static COMMON: Part = matmul_part!("nn_matmul_common.wgsl");
/// Workgroup-memory tiles with 8x8 register blocks (GPUs).
static TILED: Part = matmul_part!("nn_matmul_tiled.wgsl");
/// Rows per workgroup and consecutive columns across lanes: the subgroup variant's
/// layout.
static LANES: Part = matmul_part!("nn_matmul_lanes.wgsl");
/// A 16x8 block per invocation, no barriers (CPU adapters); its rows block is
/// generated ([`rows_block`]).
static ROWS: Part = matmul_part!("nn_matmul_rows.wgsl");
/// A 32-row block per invocation, one subgroup per workgroup sharing A through
/// shuffles (CPU adapters with subgroups); its rows and column blocks are generated
/// ([`rows_block`], [`column_block`]).
static ROWS_SUBGROUP: Part = matmul_part!("nn_matmul_rows_subgroup.wgsl");
/// A loads shared through subgroup shuffles.
static SUBGROUP: Part = matmul_part!("nn_matmul_subgroup.wgsl");

/// Which matmul kernel family the nn ops use on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatmulVariant {
    /// For CPU adapters (lavapipe, SwiftShader): a 16x8 register block per
    /// invocation, lanes on consecutive columns, no workgroup memory or barriers.
    Rows,
    /// For CPU adapters with subgroups of at least `ROWS_SUBGROUP_LANES` lanes
    /// (lavapipe): a 32x8 block per invocation (32x4 for products of at most 32
    /// columns), one subgroup per workgroup, each value of A loaded by one lane and
    /// shared through subgroup shuffles (needs subgroups).
    RowsSubgroup,
    /// For GPUs: block tiling through workgroup memory plus 8x8 register tiles.
    Tiled,
    /// A register block per invocation with A shared through subgroup shuffles (needs
    /// subgroups).
    Subgroup,
    /// [`Tiled`](Self::Tiled) with the staged tiles in f16 and f32 accumulation (needs
    /// shader-f16; inputs are rounded to f16, about 3 decimal digits).
    TiledF16,
}

impl MatmulVariant {
    /// Every variant.
    pub const ALL: [MatmulVariant; 5] = [
        Self::Rows,
        Self::RowsSubgroup,
        Self::Tiled,
        Self::Subgroup,
        Self::TiledF16,
    ];

    /// Name used by `coptim bench --nn` and in test messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rows => "rows",
            Self::RowsSubgroup => "rows_subgroup",
            Self::Tiled => "tiled",
            Self::Subgroup => "subgroup",
            Self::TiledF16 => "tiled_f16",
        }
    }

    /// The variant for a device: on CPU adapters [`RowsSubgroup`](Self::RowsSubgroup)
    /// where it can run, else [`Rows`](Self::Rows); elsewhere [`Tiled`](Self::Tiled),
    /// or `Rows` where the tiled kernel does not fit the limits. The GPU subgroup and
    /// f16 variants are opt-in ([`crate::nn::Kernels::with_matmul`]).
    pub fn for_context(ctx: &GpuContext) -> Self {
        let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
        if cpu && Self::RowsSubgroup.check(ctx).is_ok() {
            Self::RowsSubgroup
        } else if cpu || Self::Tiled.check(ctx).is_err() {
            Self::Rows
        } else {
            Self::Tiled
        }
    }

    /// Whether the device can run this variant: its optional feature and limits.
    pub fn check(self, ctx: &GpuContext) -> Result<()> {
        let caps = ctx.capabilities();
        let missing = match self {
            Self::Subgroup | Self::RowsSubgroup if !caps.subgroups => Some("SUBGROUP"),
            Self::TiledF16 if !caps.f16 => Some("SHADER_F16"),
            _ => None,
        };
        if let Some(feature) = missing {
            return Err(Error::MissingFeature {
                adapter: ctx.adapter_info().name.clone(),
                feature: feature.into(),
            });
        }
        let lanes = ctx.adapter_info().subgroup_min_size;
        if self == Self::RowsSubgroup && lanes < ROWS_SUBGROUP_LANES {
            return Err(Error::MissingFeature {
                adapter: ctx.adapter_info().name.clone(),
                feature: format!("subgroups of at least {ROWS_SUBGROUP_LANES} lanes (has {lanes})"),
            });
        }
        let limits = ctx.limits();
        let shaders = MatmulShader::ALL.iter().filter(|s| s.variant == self);
        for s in shaders {
            let invocations = s.workgroup_size();
            if invocations > limits.max_compute_invocations_per_workgroup
                || invocations > limits.max_compute_workgroup_size_x
            {
                return Err(Error::LimitExceeded {
                    what: format!("invocations per workgroup of matmul `{}`", s.name),
                    needed: invocations.into(),
                    allowed: limits.max_compute_invocations_per_workgroup.into(),
                });
            }
            if s.workgroup_bytes() > limits.max_compute_workgroup_storage_size {
                return Err(Error::LimitExceeded {
                    what: format!("workgroup storage of matmul `{}`", s.name),
                    needed: s.workgroup_bytes().into(),
                    allowed: limits.max_compute_workgroup_storage_size.into(),
                });
            }
        }
        Ok(())
    }

    /// The specialization that computes an `m x n` product.
    pub(crate) fn shader_for(self, m: usize, n: usize) -> MatmulShader {
        let fits = |s: &&MatmulShader| match s.layout {
            Layout::Tiled { tile, .. } => m.min(n) <= tile as usize,
            Layout::Lanes { wg_size, cols, .. } => n <= (wg_size * cols) as usize,
            Layout::RowsSubgroup { cols } => n <= (ROWS_SUBGROUP_LANES * cols) as usize,
            Layout::Rows { .. } => true,
        };
        let mut candidates = MatmulShader::ALL.iter().filter(|s| s.variant == self);
        let last = *candidates
            .clone()
            .next_back()
            .expect("every variant has a shader");
        *candidates.find(fits).unwrap_or(&last)
    }
}

/// How a specialization divides C among workgroups and invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Layout {
    /// `tile x tile` of C per workgroup of `wg_size`, k steps of `tile_k`.
    Tiled {
        tile: u32,
        tile_k: u32,
        wg_size: u32,
    },
    /// `4 * row_vecs` rows per workgroup; `cols` columns per invocation.
    Lanes {
        wg_size: u32,
        row_vecs: u32,
        cols: u32,
    },
    /// [`ROWS_BLOCK`] rows per workgroup, [`ROWS_COLS`] columns per invocation.
    Rows { wg_size: u32 },
    /// [`ROWS_SUBGROUP_BLOCK`] rows per workgroup of [`ROWS_SUBGROUP_LANES`],
    /// `cols` columns per invocation (one of [`ROWS_SUBGROUP_COLS`]).
    RowsSubgroup { cols: u32 },
}

/// Rows of C per workgroup of `nn_matmul_rows.wgsl` (`BLOCK_ROWS`).
const ROWS_BLOCK: u32 = 16;
/// Columns of C per invocation of `nn_matmul_rows.wgsl`.
const ROWS_COLS: u32 = 8;

/// Invocations per workgroup of `nn_matmul_rows_subgroup.wgsl`, one subgroup
/// (`SUBGROUP_LANES`): the adapter's subgroups must have at least this many lanes.
pub const ROWS_SUBGROUP_LANES: u32 = 8;
/// Rows of C per workgroup of `nn_matmul_rows_subgroup.wgsl` (`BLOCK_ROWS`).
const ROWS_SUBGROUP_BLOCK: u32 = 32;
/// Columns of C per invocation of `nn_matmul_rows_subgroup.wgsl` (`COLS`), narrow
/// and wide.
const ROWS_SUBGROUP_COLS: [u32; 2] = [4, 8];

/// One compiled specialization of a [`MatmulVariant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MatmulShader {
    /// Module name.
    pub name: &'static str,
    variant: MatmulVariant,
    layout: Layout,
}

const fn tiled(name: &'static str, variant: MatmulVariant, tile: u32, wg: u32) -> MatmulShader {
    MatmulShader {
        name,
        variant,
        layout: Layout::Tiled {
            tile,
            tile_k: 16,
            wg_size: wg,
        },
    }
}

const fn lanes(name: &'static str, variant: MatmulVariant, wg: u32, cols: u32) -> MatmulShader {
    MatmulShader {
        name,
        variant,
        layout: Layout::Lanes {
            wg_size: wg,
            row_vecs: 2,
            cols,
        },
    }
}

impl MatmulShader {
    /// Every specialization; per variant, from the narrowest to the widest (the
    /// first that fits a product is used).
    pub const ALL: [MatmulShader; 10] = {
        use MatmulVariant::*;
        [
            MatmulShader {
                name: "nn_matmul_rows",
                variant: Rows,
                layout: Layout::Rows { wg_size: 8 },
            },
            MatmulShader {
                name: "nn_matmul_rows_subgroup_narrow",
                variant: RowsSubgroup,
                layout: Layout::RowsSubgroup {
                    cols: ROWS_SUBGROUP_COLS[0],
                },
            },
            MatmulShader {
                name: "nn_matmul_rows_subgroup",
                variant: RowsSubgroup,
                layout: Layout::RowsSubgroup {
                    cols: ROWS_SUBGROUP_COLS[1],
                },
            },
            tiled("nn_matmul_tiled_small", Tiled, 32, 16),
            tiled("nn_matmul_tiled_medium", Tiled, 64, 64),
            tiled("nn_matmul_tiled", Tiled, 128, 256),
            lanes("nn_matmul_subgroup", Subgroup, 64, 2),
            tiled("nn_matmul_tiled_f16_small", TiledF16, 32, 16),
            tiled("nn_matmul_tiled_f16_medium", TiledF16, 64, 64),
            tiled("nn_matmul_tiled_f16", TiledF16, 128, 256),
        ]
    };

    fn workgroup_size(self) -> u32 {
        match self.layout {
            Layout::Tiled { wg_size, .. }
            | Layout::Lanes { wg_size, .. }
            | Layout::Rows { wg_size } => wg_size,
            Layout::RowsSubgroup { .. } => ROWS_SUBGROUP_LANES,
        }
    }

    /// Bytes of workgroup memory (the staged tiles of the tiled kernels).
    fn workgroup_bytes(self) -> u32 {
        match self.layout {
            Layout::Tiled { tile, tile_k, .. } => {
                let scalar = if self.variant == MatmulVariant::TiledF16 {
                    2
                } else {
                    4
                };
                2 * tile * tile_k * scalar
            }
            Layout::Lanes { .. } | Layout::Rows { .. } | Layout::RowsSubgroup { .. } => 0,
        }
    }

    /// Workgroups for an `m x n` product over `batch` matrices.
    pub fn grid(self, m: usize, n: usize, batch: usize) -> [usize; 3] {
        let (rows, cols) = match self.layout {
            Layout::Tiled { tile, .. } => (tile, tile),
            Layout::Lanes {
                wg_size,
                row_vecs,
                cols,
            } => (4 * row_vecs, wg_size * cols),
            Layout::Rows { wg_size } => (ROWS_BLOCK, wg_size * ROWS_COLS),
            Layout::RowsSubgroup { cols } => (ROWS_SUBGROUP_BLOCK, ROWS_SUBGROUP_LANES * cols),
        };
        [n.div_ceil(cols as usize), m.div_ceil(rows as usize), batch]
    }

    /// The module: generated constants and the staging type, the common part, then
    /// the kernel.
    pub fn module(self) -> ShaderBuilder {
        let mut module = ShaderBuilder::new(self.name);
        module = match self.variant {
            MatmulVariant::TiledF16 => module.enable("f16").alias("Stage", "f16"),
            _ => module.alias("Stage", "f32"),
        };
        module = match self.layout {
            Layout::Tiled {
                tile,
                tile_k,
                wg_size,
            } => module
                .constant("TILE_M", tile)
                .constant("TILE_N", tile)
                .constant("TILE_K", tile_k)
                .constant("WG_SIZE", wg_size)
                .part(&COMMON)
                .part(&TILED),
            Layout::Lanes {
                wg_size,
                row_vecs,
                cols,
            } => module
                .constant("WG_SIZE", wg_size)
                .constant("ROW_VECS", row_vecs)
                .constant("COLS", cols)
                .part(&COMMON)
                .part(&LANES)
                .part(&SUBGROUP),
            Layout::Rows { wg_size } => module
                .constant("WG_SIZE", wg_size)
                .declare(rows_block(ROWS_BLOCK))
                .part(&COMMON)
                .part(&ROWS),
            Layout::RowsSubgroup { cols } => module
                .constant("COLS", cols)
                .declare(rows_block(ROWS_SUBGROUP_BLOCK))
                .declare(column_block(cols))
                .part(&COMMON)
                .part(&ROWS_SUBGROUP),
        };
        module
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_shaders_and_picks_by_shape() {
        for v in MatmulVariant::ALL {
            assert_eq!(v.shader_for(1, 1).variant, v);
            assert_eq!(v.shader_for(4096, 4096).variant, v);
        }
        for (variant, m, n, shader) in [
            (MatmulVariant::Tiled, 17, 17, "nn_matmul_tiled_small"),
            (MatmulVariant::Tiled, 500, 500, "nn_matmul_tiled"),
            (MatmulVariant::Subgroup, 500, 10, "nn_matmul_subgroup"),
            (MatmulVariant::Rows, 500, 500, "nn_matmul_rows"),
            (
                MatmulVariant::RowsSubgroup,
                1,
                500,
                "nn_matmul_rows_subgroup",
            ),
            (
                MatmulVariant::RowsSubgroup,
                500,
                33,
                "nn_matmul_rows_subgroup",
            ),
            (
                MatmulVariant::RowsSubgroup,
                500,
                32,
                "nn_matmul_rows_subgroup_narrow",
            ),
        ] {
            assert_eq!(variant.shader_for(m, n).name, shader, "{variant:?} {m}x{n}");
        }
    }

    #[test]
    fn rows_constants_match_the_wgsl() {
        for (part, name, value) in [
            (&ROWS, "BLOCK_ROWS", ROWS_BLOCK),
            (&ROWS_SUBGROUP, "SUBGROUP_LANES", ROWS_SUBGROUP_LANES),
            (&ROWS_SUBGROUP, "BLOCK_ROWS", ROWS_SUBGROUP_BLOCK),
        ] {
            let decl = format!("const {name}: u32 = {value}u;");
            assert!(part.source.contains(&decl), "{}: {decl}", part.name);
        }
        for shader in MatmulShader::ALL {
            if let Layout::RowsSubgroup { cols } = shader.layout {
                let decl = format!("const COLS: u32 = {cols}u;");
                assert!(shader.module().build().unwrap().contains(&decl), "{decl}");
            }
        }
    }

    #[test]
    fn grids_cover_the_product() {
        for s in MatmulShader::ALL {
            let [x, y, z] = s.grid(1000, 77, 3);
            assert_eq!(z, 3);
            let [x1, y1, _] = s.grid(1, 1, 1);
            assert_eq!((x1, y1), (1, 1), "{}", s.name);
            assert!(x >= 1 && y >= 1);
        }
    }
}
