//! The copy kernel: the bandwidth an optimizer step is measured against.
//!
//! [`CopyKernel`] reads one set of buffers and writes another, `len` f32 elements in
//! all, in chunks no larger than the device's storage-binding limit (one dispatch per
//! chunk, like the optimizer's binding windows). Its access pattern is the optimizer
//! kernels' own (vec4 loads, the same workgroup size and vec4s per invocation).

use wgpu::util::DeviceExt;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::kernels::{BLOCK_ELEMS, WG_SIZE};
use crate::optim::plan::grid_for;

/// WGSL of the copy kernel.
pub const COPY_WGSL: &str = include_str!("../../shaders/copy.wgsl");

/// vec4s one invocation of the optimizer kernels (and of the copy kernel) handles.
pub const VEC_PER_THREAD: u32 = BLOCK_ELEMS as u32 / (4 * WG_SIZE);

/// One chunk: source, destination and the bind group of its dispatch.
#[derive(Debug)]
struct Chunk {
    bind_group: wgpu::BindGroup,
    grid: (u32, u32),
    _buffers: [wgpu::Buffer; 3],
}

/// A device-side copy of `len` f32 elements from one set of buffers to another.
#[derive(Debug)]
pub struct CopyKernel {
    pipeline: wgpu::ComputePipeline,
    chunks: Vec<Chunk>,
    len: u64,
}

impl CopyKernel {
    /// Allocates source and destination buffers for `len` f32 elements (rounded up to
    /// a multiple of 4) and the pipeline that copies them.
    pub fn new(ctx: &GpuContext, len: u64) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidConfig("copy of zero elements".into()));
        }
        let device = ctx.device();
        let limits = ctx.limits();
        let max_chunk_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            / 16
            * 16;
        let vec4s_per_wg = (WG_SIZE * VEC_PER_THREAD) as u64;
        // Whole workgroups per chunk, and at most u32::MAX vec4s.
        let chunk_vec4 = (max_chunk_bytes / 16).min(u32::MAX as u64) / vec4s_per_wg * vec4s_per_wg;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("coptim copy"),
            source: wgpu::ShaderSource::Wgsl(COPY_WGSL.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("coptim copy"),
            layout: None,
            module: &module,
            entry_point: Some("copy"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[("VEC_PER_THREAD", VEC_PER_THREAD as f64)],
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let max_dim = limits.max_compute_workgroups_per_dimension;
        let total_vec4 = len.div_ceil(4);
        let mut chunks = Vec::new();
        let mut done = 0u64;
        while done < total_vec4 {
            let n = chunk_vec4.min(total_vec4 - done);
            let storage = |label: &str| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: n * 16,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            };
            let src = storage("coptim copy src");
            let dst = storage("coptim copy dst");
            let grid = grid_for(n.div_ceil(vec4s_per_wg) as u32, max_dim)?;
            let info = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("coptim copy info"),
                contents: bytemuck::cast_slice(&[n as u32, grid.0, 0, 0]),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("coptim copy"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: src.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: dst.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: info.as_entire_binding(),
                    },
                ],
            });
            chunks.push(Chunk {
                bind_group,
                grid,
                _buffers: [src, dst, info],
            });
            done += n;
        }
        Ok(Self {
            pipeline,
            chunks,
            len: total_vec4 * 4,
        })
    }

    /// Elements copied (a multiple of 4).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a copy kernel has at least one vec4.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes one copy moves: every element read once and written once.
    pub fn bytes(&self) -> u64 {
        self.len * 8
    }

    /// Records one copy (one compute pass, one dispatch per chunk).
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim copy"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for c in &self.chunks {
            pass.set_bind_group(0, &c.bind_group, &[]);
            pass.dispatch_workgroups(c.grid.0, c.grid.1, 1);
        }
    }
}
