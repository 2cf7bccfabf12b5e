//! Muon's own compute pipelines (`shaders/muon.wgsl`, `shaders/muon_scale.wgsl`):
//! explicit bind group layouts and ready-to-record launches.

use crate::error::Result;
use crate::nn::Dispatch;
use crate::optim::muon::words::{MuonStep, MuonTensor};
use crate::wgsl::{Part, ShaderBuilder, lib, shader_part};

pub(crate) use crate::optim::own_kernels::{
    CHUNK, Slot, WG_SIZE, bind_group, layout, pipelines, tensor_layout, tensor_module, uniform,
};

/// `muon.wgsl`: measure, finalize, normalize and apply.
static MUON: Part = shader_part!(
    "muon.wgsl",
    &[],
    &[
        "flat_index",
        "chunk_of",
        "chunk_element",
        "partials_sum",
        "partials_count",
        "caution_scale",
        "skipping",
    ]
);
/// `muon_scale.wgsl`: `dst = scale * src`.
static SCALE: Part = shader_part!("muon_scale.wgsl", &[], &["flat_index"]);

/// The module of `muon.wgsl` with Muon's constants and the shared helpers.
pub(crate) fn muon_module() -> ShaderBuilder {
    tensor_module::<MuonTensor, MuonStep>("coptim muon")
        .part(&lib::OWN_STATUS)
        .part(&MUON)
}

/// The module of `muon_scale.wgsl`.
pub(crate) fn scale_module() -> ShaderBuilder {
    ShaderBuilder::new("coptim muon scale")
        .constant("WG_SIZE", WG_SIZE)
        .part(&lib::GRID)
        .part(&SCALE)
}

/// The WGSL of `muon.wgsl`'s module (for validation in the tests).
pub fn muon_source() -> Result<String> {
    muon_module().build()
}

/// The WGSL of `muon_scale.wgsl`'s module.
pub fn scale_source() -> Result<String> {
    scale_module().build()
}

/// A dispatch with everything bound: a matmul of the nn kernels or one of Muon's.
#[derive(Debug)]
pub(crate) enum Launch {
    /// A product through the autograd's matmul kernels.
    Matmul(Dispatch),
    /// One of Muon's kernels.
    Own {
        pipeline: wgpu::ComputePipeline,
        bind_group: wgpu::BindGroup,
        grid: [u32; 2],
    },
}

impl Launch {
    /// Records it into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        match self {
            Launch::Matmul(d) => d.record(pass),
            Launch::Own {
                pipeline,
                bind_group,
                grid,
            } => {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(grid[0], grid[1], 1);
            }
        }
    }
}

/// A 2-D grid of at least `groups` workgroups (at least one) within `max_dim` per
/// dimension; the kernels number them with `workgroup_linear`.
pub(crate) fn grid(groups: u64, max_dim: u32) -> [u32; 2] {
    let groups = groups.max(1);
    let x = groups.min(u64::from(max_dim));
    [x as u32, groups.div_ceil(x) as u32]
}
