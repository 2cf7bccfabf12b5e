//! The copy kernel: the bandwidth an optimizer step is measured against.
//!
//! [`CopyBuffers`] holds a source and a destination of `len` f32 elements, in chunks
//! no larger than the device's storage-binding limit (one dispatch per chunk, like the
//! optimizer's binding windows). A [`CopyKernel`] copies them with one
//! [`CopyVariant`] (access pattern, workgroup size, vec4s per invocation), so that
//! several variants can be timed side by side on the same memory.

use wgpu::util::DeviceExt;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::plan::grid_for;
use crate::stream::StreamShape;
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// The copy kernel's WGSL (its constants come from [`CopyVariant::shader`]).
pub const COPY: Part = shader_part!("copy.wgsl", &[], &[]);

/// Chunks hold a multiple of this many vec4s, so that every variant's blocks tile
/// them (1 MiB).
const CHUNK_ALIGN_VEC4: u64 = 1 << 16;

/// Which vec4s of its workgroup's block invocation `lid` copies on its `k`-th load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyPattern {
    /// `k * WG_SIZE + lid`: neighbouring invocations copy neighbouring vec4s (the
    /// engine's kernels, every adapter).
    Strided,
    /// `lid * VEC_PER_THREAD + k`: each invocation copies a contiguous run.
    Contiguous,
}

impl CopyPattern {
    /// Name in reports (`strided`, `contiguous`).
    pub fn name(self) -> &'static str {
        match self {
            CopyPattern::Strided => "strided",
            CopyPattern::Contiguous => "contiguous",
        }
    }
}

/// How a [`CopyKernel`] walks memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CopyVariant {
    /// Which vec4s of its block an invocation copies.
    pub pattern: CopyPattern,
    /// Invocations per workgroup and vec4s per invocation.
    pub shape: StreamShape,
}

impl CopyVariant {
    /// The engine's own access (strided, the context's [`StreamShape`]): the
    /// yardstick steps are compared with.
    pub fn for_context(ctx: &GpuContext) -> Self {
        Self {
            pattern: CopyPattern::Strided,
            shape: ctx.stream_shape(),
        }
    }

    /// The variants `coptim bench` times side by side: strided at shapes from the
    /// GPU's (256 invocations x 4 vec4s) to the CPU's long runs, all covering the
    /// optimizer's block of 1024 vec4s, and contiguous runs at both engine shapes.
    pub fn sweep() -> Vec<Self> {
        let strided =
            [(256, 4), (64, 16), (32, 32), (16, 64), (8, 128)].map(|(wg_size, vec_per_thread)| {
                Self {
                    pattern: CopyPattern::Strided,
                    shape: StreamShape {
                        wg_size,
                        vec_per_thread,
                    },
                }
            });
        let contiguous = StreamShape::ALL.map(|shape| Self {
            pattern: CopyPattern::Contiguous,
            shape,
        });
        strided.into_iter().chain(contiguous).collect()
    }

    /// `pattern-WGxVPT`, e.g. `strided-16x64`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.pattern.name(), self.shape.name())
    }

    /// vec4s one workgroup copies.
    pub fn block_vec4(&self) -> u64 {
        u64::from(self.shape.wg_size) * u64::from(self.shape.vec_per_thread)
    }

    /// This variant's module: its constants, then [`COPY`].
    pub fn shader(&self) -> ShaderBuilder {
        ShaderBuilder::new(format!("coptim copy {}", self.name()))
            .constant("WG_SIZE", self.shape.wg_size)
            .constant("VEC_PER_THREAD", self.shape.vec_per_thread)
            .constant("CONTIGUOUS", self.pattern == CopyPattern::Contiguous)
            .part(&COPY)
    }

    fn validate(&self, limits: &wgpu::Limits) -> Result<()> {
        let max_wg = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        let StreamShape {
            wg_size,
            vec_per_thread,
        } = self.shape;
        let fits = (1..=max_wg).contains(&wg_size) && vec_per_thread > 0;
        if !fits || !CHUNK_ALIGN_VEC4.is_multiple_of(self.block_vec4()) {
            return Err(Error::InvalidConfig(format!(
                "copy variant {}: the workgroup size must be 1..={max_wg} and a block \
                 (workgroup size x vec4s per invocation) must divide {CHUNK_ALIGN_VEC4} vec4s",
                self.name()
            )));
        }
        Ok(())
    }
}

/// Source and destination buffers of a copy, in binding-sized chunks.
#[derive(Debug)]
pub struct CopyBuffers {
    /// (source, destination, vec4s) per chunk.
    chunks: Vec<(wgpu::Buffer, wgpu::Buffer, u64)>,
    len: u64,
}

impl CopyBuffers {
    /// Allocates source and destination for `len` f32 elements (rounded up to a
    /// multiple of 4).
    pub fn new(ctx: &GpuContext, len: u64) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidConfig("copy of zero elements".into()));
        }
        let limits = ctx.limits();
        let max_chunk_vec4 = (limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            / 16)
            .min(u64::from(u32::MAX));
        let chunk_vec4 = max_chunk_vec4 / CHUNK_ALIGN_VEC4 * CHUNK_ALIGN_VEC4;
        if chunk_vec4 == 0 {
            return Err(Error::LimitExceeded {
                what: "storage binding size for one copy chunk (bytes)".into(),
                needed: CHUNK_ALIGN_VEC4 * 16,
                allowed: max_chunk_vec4 * 16,
            });
        }
        let total_vec4 = len.div_ceil(4);
        let storage = |label: &str, n: u64| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: n * 16,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let mut chunks = Vec::new();
        let mut done = 0;
        while done < total_vec4 {
            let n = chunk_vec4.min(total_vec4 - done);
            chunks.push((
                storage("coptim copy src", n),
                storage("coptim copy dst", n),
                n,
            ));
            done += n;
        }
        Ok(Self {
            chunks,
            len: total_vec4 * 4,
        })
    }

    /// Elements copied (a multiple of 4).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a copy has at least one vec4.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes one copy moves: every element read once and written once.
    pub fn bytes(&self) -> u64 {
        self.len * 8
    }
}

/// One chunk's dispatch: its bind group, grid and the uniform the group binds.
#[derive(Debug)]
struct ChunkDispatch {
    bind_group: wgpu::BindGroup,
    grid: (u32, u32),
    _info: wgpu::Buffer,
}

/// A device-side copy of [`CopyBuffers`] with one [`CopyVariant`].
#[derive(Debug)]
pub struct CopyKernel {
    variant: CopyVariant,
    pipeline: wgpu::ComputePipeline,
    dispatches: Vec<ChunkDispatch>,
    bytes: u64,
}

impl CopyKernel {
    /// Compiles `variant` and binds it to `buffers`.
    pub fn new(ctx: &GpuContext, buffers: &CopyBuffers, variant: CopyVariant) -> Result<Self> {
        variant.validate(ctx.limits())?;
        let device = ctx.device();
        let module = variant.shader().create_module(device)?;
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("coptim copy"),
            layout: None,
            module: &module,
            entry_point: Some("copy"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let max_dim = ctx.limits().max_compute_workgroups_per_dimension;
        let dispatches = buffers
            .chunks
            .iter()
            .map(|(src, dst, n)| {
                let grid = grid_for(n.div_ceil(variant.block_vec4()) as u32, max_dim)?;
                let info = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("coptim copy info"),
                    contents: bytemuck::cast_slice(&[*n as u32, grid.0, 0, 0]),
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
                Ok(ChunkDispatch {
                    bind_group,
                    grid,
                    _info: info,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            variant,
            pipeline,
            dispatches,
            bytes: buffers.bytes(),
        })
    }

    /// The variant this kernel runs.
    pub fn variant(&self) -> CopyVariant {
        self.variant
    }

    /// Bytes one copy moves (read + write).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records one copy (one compute pass, one dispatch per chunk).
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim copy"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for d in &self.dispatches {
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.grid.0, d.grid.1, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_ALIGN_VEC4, CopyBuffers, CopyKernel, CopyPattern, CopyVariant};
    use crate::arena::read_buffer;
    use crate::context::{ContextOptions, GpuContext};
    use crate::stream::StreamShape;

    /// Every variant copies every element exactly, whole blocks and a ragged tail
    /// alike (a copy has no tolerance: the bits must match).
    #[test]
    fn every_variant_copies_every_element() {
        let ctx = GpuContext::new_blocking(&ContextOptions::default()).unwrap();
        // Two whole 1 MiB tiles plus a tail that fills no variant's block.
        let len = 2 * CHUNK_ALIGN_VEC4 * 4 + 4 * 300 + 2;
        let buffers = CopyBuffers::new(&ctx, len).unwrap();
        let (src, dst, n) = &buffers.chunks[0];
        let data: Vec<f32> = (0..n * 4).map(|i| i as f32 * 0.5 - 7.0).collect();
        ctx.queue()
            .write_buffer(src, 0, bytemuck::cast_slice(&data));
        for variant in CopyVariant::sweep() {
            ctx.queue()
                .write_buffer(dst, 0, &vec![0xFF; (n * 16) as usize]);
            let kernel = CopyKernel::new(&ctx, &buffers, variant).unwrap();
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            kernel.record(&mut enc);
            ctx.queue().submit([enc.finish()]);
            let got = pollster::block_on(read_buffer(&ctx, dst, 0, n * 16)).unwrap();
            let got: &[f32] = bytemuck::cast_slice(&got);
            let first_bad = got
                .iter()
                .zip(&data)
                .position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(first_bad, None, "{}", variant.name());
        }
    }

    #[test]
    fn the_yardstick_follows_the_context_shape_override() {
        let ctx = GpuContext::new_blocking(&ContextOptions::default()).unwrap();
        for shape in StreamShape::ALL {
            let forced = ctx.with_stream_shape(shape);
            assert_eq!(
                CopyVariant::for_context(&forced),
                CopyVariant {
                    pattern: CopyPattern::Strided,
                    shape
                }
            );
        }
    }

    #[test]
    fn variants_the_device_cannot_run_are_typed_errors() {
        let ctx = GpuContext::new_blocking(&ContextOptions::default()).unwrap();
        let buffers = CopyBuffers::new(&ctx, 4096).unwrap();
        let too_wide = ctx.limits().max_compute_invocations_per_workgroup * 2;
        for (wg_size, vec_per_thread) in [(0, 4), (256, 0), (too_wide, 1), (96, 4)] {
            let variant = CopyVariant {
                pattern: CopyPattern::Contiguous,
                shape: StreamShape {
                    wg_size,
                    vec_per_thread,
                },
            };
            let err = CopyKernel::new(&ctx, &buffers, variant).unwrap_err();
            assert!(matches!(err, crate::Error::InvalidConfig(_)), "{err}");
        }
        assert!(matches!(
            CopyBuffers::new(&ctx, 0),
            Err(crate::Error::InvalidConfig(_))
        ));
    }
}
