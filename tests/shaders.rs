//! Every WGSL module the engine builds parses and validates with naga, in each
//! variant (subgroups on and off, vec4 and scalar parameter access, every stream
//! shape).

mod common;

use coptim::ElementType;
use coptim::arena::ParamAccess;
use coptim::optim::{Algorithm, kernels};
use coptim::stream::StreamShape;

use common::validate_wgsl as validate;

#[test]
fn optimizer_modules_validate() {
    for shape in StreamShape::ALL {
        for algorithm in Algorithm::members() {
            for subgroups in [false, true] {
                for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
                    let f32 = ElementType::F32;
                    let src = kernels::algorithm_source(&algorithm, subgroups, f32, access, shape);
                    let name = format!(
                        "{} subgroups={subgroups} {access:?} {}",
                        algorithm.name(),
                        shape.name()
                    );
                    validate(&name, &src);
                }
            }
        }
        for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
            validate(
                &format!("reduce {access:?} {}", shape.name()),
                &kernels::reduce_source(access, shape),
            );
        }
    }
}

/// A kernel of one workgroup of 256: invocation 0 adds 2^16 + 1, the others 2^16, a
/// total of 256 * 2^16 + 1 = 2^24 + 1, which f32 cannot hold.
static COUNT_KERNEL: coptim::wgsl::Part = coptim::wgsl::Part {
    name: "count kernel (test)",
    source: "
@group(0) @binding(0) var<storage, read_write> out: array<u32, 2>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
    let value = select(65536u, 65537u, lid == 0u);
    let count = workgroup_count(value, lid);
    let sum = workgroup_sum(f32(value), lid);
    if lid == 0u {
        out[0] = count;
        out[1] = u32(sum);
    }
}
",
    provides: &[],
    requires: &["workgroup_count", "workgroup_sum"],
};

/// Runs `COUNT_KERNEL`: (workgroup_count's total, workgroup_sum's total as u32).
fn run_count_kernel(ctx: &coptim::GpuContext) -> [u32; 2] {
    use coptim::wgsl::{ShaderBuilder, lib};
    let device = ctx.device();
    let module = ShaderBuilder::new("count test")
        .constant("WG_SIZE", 256u32)
        .part(&lib::WORKGROUP_COUNT)
        .part(&lib::WORKGROUP_SUM)
        .part(&COUNT_KERNEL)
        .create_module(device)
        .unwrap();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 8,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: out.as_entire_binding(),
        }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    ctx.queue().submit([encoder.finish()]);
    let bytes = pollster::block_on(coptim::arena::read_buffer(ctx, &out, 0, 8)).unwrap();
    bytemuck::pod_read_unaligned(&bytes)
}

/// The agreement counts of Muon, Adafactor (lib/chunk_partials.wgsl) are summed as u32:
/// exact past 2^24, where the f32 tree sum they replaced already rounds (2^24 + 1
/// comes out as 2^24). The f32 result is checked too, so the case is one f32 fails.
#[test]
fn workgroup_count_is_exact_where_an_f32_sum_rounds() {
    let [count, f32_sum] = run_count_kernel(&common::ctx());
    assert_eq!(count, (1 << 24) + 1);
    assert_eq!(f32_sum, 1 << 24, "the crafted case no longer rounds in f32");
}
