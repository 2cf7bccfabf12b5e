//! What the optimizers with kernels of their own (Muon, Adafactor) share: their
//! modules' common helpers, explicit bind group layouts, bind groups, pipelines of a
//! module's entry points, uniform blocks, and the binding of a caller's tensor view.

use wgpu::util::DeviceExt;

use crate::arena::{BufferView, ParamTensor};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::wgsl::{Part, ShaderBuilder, WgslStruct, lib, shader_part};

/// What a binding of a layout holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    /// A uniform block.
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    ReadWrite,
}

/// Invocations per workgroup of the chunked per-tensor passes.
pub(crate) const WG_SIZE: u32 = 256;
/// Elements per invocation of the chunked passes (even: Adafactor's `momentum` works
/// in pairs).
pub(crate) const ITEMS: u32 = 4;
/// Elements per chunk (one partial each).
pub(crate) const CHUNK: u64 = (WG_SIZE * ITEMS) as u64;

/// The bindings every per-tensor module starts with: the tensor's uniform block, the
/// step's, the parameters (read-write) and the gradients (read-only), declared in
/// WGSL by [`tensor_module`].
const TENSOR_SLOTS: [Slot; 4] = [Slot::Uniform, Slot::Uniform, Slot::ReadWrite, Slot::Read];

/// `lib/tensor_partials.wgsl`: `chunk_partial(c)` and `chunk_count()` of
/// `lib/chunk_partials.wgsl` from the module's `tensor` uniform (its `partial_base`
/// and `chunks`) and its `partials` binding.
static TENSOR_PARTIALS: Part = shader_part!(
    "lib/tensor_partials.wgsl",
    &["chunk_partial", "chunk_count"],
    &[]
);

/// A module named `label` with [`WG_SIZE`] and [`ITEMS`] and the helpers of the
/// chunked per-tensor passes: grid indexing, the f32 and u32 workgroup sums, the chunk
/// partials (of the module's `tensor` and `partials`) and the caution scale.
pub(crate) fn chunked_module(label: &str) -> ShaderBuilder {
    ShaderBuilder::new(label)
        .constant("WG_SIZE", WG_SIZE)
        .constant("ITEMS", ITEMS)
        .part(&lib::GRID)
        .part(&lib::WORKGROUP_SUM)
        .part(&lib::WORKGROUP_COUNT)
        .part(&lib::CHUNK_PARTIALS)
        .part(&TENSOR_PARTIALS)
        .part(&lib::CAUTION_SCALE)
}

/// A [`chunked_module`] whose bindings start with [`TENSOR_SLOTS`] (its layout is a
/// [`tensor_layout`]): declares the structs `T` and `S` and the bindings
/// `tensor: T`, `step: S`, `param` and `grad`.
pub(crate) fn tensor_module<T: WgslStruct, S: WgslStruct>(label: &str) -> ShaderBuilder {
    chunked_module(label)
        .declare(T::WGSL)
        .declare(S::WGSL)
        .declare(format!(
            "@group(0) @binding(0) var<uniform> tensor: {};\n\
             @group(0) @binding(1) var<uniform> step: {};\n\
             @group(0) @binding(2) var<storage, read_write> param: array<f32>;\n\
             @group(0) @binding(3) var<storage, read> grad: array<f32>;",
            T::NAME,
            S::NAME
        ))
}

/// The bind group layout of a module whose bindings are the tensor's and the step's
/// uniform blocks, the parameters and the gradients, then `rest`.
pub(crate) fn tensor_layout(ctx: &GpuContext, label: &str, rest: &[Slot]) -> wgpu::BindGroupLayout {
    layout(ctx, label, &[TENSOR_SLOTS.as_slice(), rest].concat())
}

/// A bind group layout with `slots` at bindings 0, 1, ...
pub(crate) fn layout(ctx: &GpuContext, label: &str, slots: &[Slot]) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match slot {
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    ctx.device()
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        })
}

/// The compute pipelines of `entries` of `module`'s shader, all over `layout`, created
/// inside an error scope: a module or pipeline the device rejects fails with a typed
/// error that names `what`.
pub(crate) fn pipelines(
    ctx: &GpuContext,
    module: &ShaderBuilder,
    layout: &wgpu::BindGroupLayout,
    entries: &[&str],
    what: &str,
) -> Result<Vec<wgpu::ComputePipeline>> {
    let source = module.build()?;
    let device = ctx.device();
    ctx.guarded(&format!("creating {what}'s pipelines"), || {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(module.label()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(module.label()),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        entries
            .iter()
            .map(|entry| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module: &shader,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect()
    })
}

/// A uniform buffer holding `bytes`, written once at creation.
pub(crate) fn uniform(ctx: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// A bind group of `layout` with `buffers` at bindings 0, 1, ...
pub(crate) fn bind_group(
    ctx: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    buffers: &[wgpu::BufferBinding<'_>],
) -> wgpu::BindGroup {
    let entries: Vec<_> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: wgpu::BindingResource::Buffer(b.clone()),
        })
        .collect();
    ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("coptim optimizer bind group"),
        layout,
        entries: &entries,
    })
}

/// The binding of `view` of tensor `t` from the offset aligned down to the device's
/// storage-offset alignment, and the element offset of the tensor inside it; `who`
/// names the optimizer in the error when the range exceeds a storage binding.
pub(crate) fn view_binding<'b>(
    ctx: &GpuContext,
    t: &ParamTensor,
    view: &'b BufferView,
    who: &str,
) -> Result<(wgpu::BufferBinding<'b>, u32)> {
    let align = u64::from(ctx.limits().min_storage_buffer_offset_alignment);
    let start = view.offset - view.offset % align;
    let size = view.end(t.len) - start;
    let allowed = ctx.limits().max_storage_buffer_binding_size;
    if size > allowed {
        return Err(Error::LimitExceeded {
            what: format!("{who}'s binding of tensor `{}`", t.name),
            needed: size,
            allowed,
        });
    }
    let binding = wgpu::BufferBinding {
        buffer: &view.buffer,
        offset: start,
        size: wgpu::BufferSize::new(size),
    };
    Ok((binding, ((view.offset - start) / 4) as u32))
}

#[cfg(test)]
mod tests {
    use crate::optim::{adafactor, axis_means, grad_norm};
    use crate::wgsl::layout_check::check_mirrors;
    use crate::wgsl::{MirrorLayout, ShaderBuilder};

    /// Each own-kernel module with the mirrors of the structs it declares.
    fn modules() -> Vec<(ShaderBuilder, Vec<MirrorLayout>)> {
        // Muon's joins with feature nn.
        #[allow(unused_mut)]
        let mut modules = vec![
            (adafactor::gpu::shader(), adafactor::words::mirrors()),
            (axis_means::shader(), axis_means::mirrors()),
            (grad_norm::shader(), grad_norm::mirrors()),
        ];
        #[cfg(feature = "nn")]
        modules.push((
            crate::optim::muon::launch::muon_module(),
            crate::optim::muon::words::mirrors(),
        ));
        modules
    }

    /// Every Rust mirror of a uniform or table struct has the size and field offsets of
    /// naga's layout of the WGSL struct.
    #[test]
    fn mirrors_match_the_shaders() {
        for (module, mirrors) in modules() {
            let source = module.build().unwrap();
            let found = check_mirrors(module.label(), &source, &mirrors);
            assert_eq!(found, mirrors.len(), "{}", module.label());
        }
    }
}
