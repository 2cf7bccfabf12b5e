//! A prepared compute dispatch: pipeline, bind group (with its own uniform block)
//! and workgroup grid, recorded into a pass as many times as needed.

use wgpu::util::DeviceExt;

use crate::nn::bindings::{Binding, PARAMS, Uniform};
use crate::nn::kernels::{Kernels, WG_SIZE};
use crate::nn::modules::Kernel;
use crate::nn::tensor::Tensor;

/// One kernel launch with everything bound.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    grid: [u32; 3],
}

impl Dispatch {
    /// Binds `params` (the uniform block) and `tensors` (by binding name) for
    /// `kernel`, whose layout lists exactly these buffers.
    ///
    /// # Panics
    /// When `tensors` does not name every buffer of [`Kernel::buffers`] once, or
    /// `params` is not the uniform block of the kernel's module: a mistake in an op,
    /// which every op's tests catch.
    pub fn new(
        kernels: &Kernels,
        kernel: Kernel,
        params: &Uniform,
        tensors: &[(Binding, &Tensor)],
        grid: [u32; 3],
    ) -> Self {
        let family = kernels.module_of(kernel).family();
        assert_eq!(
            params.name(),
            family.params_name(),
            "{kernel:?}: uniform block"
        );
        let mut bound: Vec<Binding> = tensors.iter().map(|(b, _)| *b).collect();
        bound.sort_by_key(|b| family.index(*b));
        let mut listed = kernel.buffers().to_vec();
        listed.sort_by_key(|b| family.index(*b));
        assert_eq!(bound, listed, "{kernel:?}: bound buffers");
        let device = kernels.context().device();
        let pipeline = kernels.pipeline(kernel);
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("coptim nn params"),
            contents: params.bytes(),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: family.index(PARAMS),
            resource: uniform.as_entire_binding(),
        }];
        entries.extend(tensors.iter().map(|(binding, t)| wgpu::BindGroupEntry {
            binding: family.index(*binding),
            resource: wgpu::BindingResource::Buffer(t.binding()),
        }));
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("coptim nn bind group"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Self {
            pipeline,
            bind_group,
            grid,
        }
    }

    /// Records the dispatch into a compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.grid[0], self.grid[1], self.grid[2]);
    }
}

/// Largest workgroup count used along one grid dimension (the WebGPU default limit).
const MAX_GRID_DIM: u32 = 65535;

/// A 2-D grid of [`WG_SIZE`]-invocation workgroups covering `n` invocations; the
/// kernels flatten it as `(wg.y * num_workgroups.x + wg.x) * WG_SIZE + local index`.
pub(crate) fn linear_grid(n: usize) -> [u32; 3] {
    group_grid((n as u64).div_ceil(u64::from(WG_SIZE)) as usize)
}

/// A 2-D grid of at least `groups` workgroups (at least one), one per row of a row
/// kernel; the kernels number them `wg.y * num_workgroups.x + wg.x`.
pub(crate) fn group_grid(groups: usize) -> [u32; 3] {
    let groups = (groups as u64).max(1);
    let x = groups.min(u64::from(MAX_GRID_DIM));
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_grid_covers_and_respects_the_limit() {
        assert_eq!(linear_grid(1), [1, 1, 1]);
        assert_eq!(linear_grid(257), [2, 1, 1]);
        let n = 1usize << 25;
        let [x, y, _] = linear_grid(n);
        assert!(x <= MAX_GRID_DIM && y <= MAX_GRID_DIM);
        assert!(u64::from(x) * u64::from(y) * u64::from(WG_SIZE) >= n as u64);
        assert_eq!(group_grid(0), [1, 1, 1]);
        let [x, y, _] = group_grid(200_000);
        assert!(x <= MAX_GRID_DIM && y <= MAX_GRID_DIM && x * y >= 200_000);
    }
}
