//! How streaming kernels are shaped for the adapter.
//!
//! A streaming kernel (the copy yardstick, the optimizer's element-wise passes) hands
//! each workgroup a block of `WG_SIZE * VEC_PER_THREAD` vec4s, and invocation `lid`
//! handles vec4s `k * WG_SIZE + lid` of it: neighbouring invocations touch
//! neighbouring vec4s. That suits GPUs (coalesced loads) and, measured, CPU adapters
//! too: llvmpipe runs a workgroup's invocations in SIMD lanes on one thread and
//! loads storage buffers lane by lane, so neighbouring lanes reading neighbouring
//! addresses share cache lines (a contiguous run per invocation measured slower:
//! BENCHMARKS.md). What differs is the shape: a CPU adapter pays per invocation and
//! per workgroup barrier, so it gets few invocations with long runs.
//!
//! Both shapes cover the same block ([`StreamShape::block_vec4`]), so block tables
//! do not depend on the adapter.

use crate::error::{Error, Result};

/// Invocations per workgroup and vec4s per invocation of a streaming kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamShape {
    /// Invocations per workgroup (`WG_SIZE`).
    pub wg_size: u32,
    /// vec4s each invocation handles per block (`VEC_PER_THREAD`).
    pub vec_per_thread: u32,
}

impl StreamShape {
    /// The shape for GPUs: 256 invocations, 4 vec4s each.
    pub const GPU: StreamShape = StreamShape {
        wg_size: 256,
        vec_per_thread: 4,
    };

    /// The shape for CPU adapters: 8 invocations (one SIMD batch of llvmpipe's
    /// 256-bit vectors), 128 vec4s each: the fastest copy measured on lavapipe
    /// (BENCHMARKS.md, `coptim bench` copy variants).
    pub const CPU: StreamShape = StreamShape {
        wg_size: 8,
        vec_per_thread: 128,
    };

    /// Both shapes (tests run every kernel with each).
    pub const ALL: [StreamShape; 2] = [StreamShape::GPU, StreamShape::CPU];

    /// [`StreamShape::CPU`] on CPU adapters, [`StreamShape::GPU`] everywhere else.
    /// [`GpuContext::with_stream_shape`](crate::GpuContext::with_stream_shape)
    /// overrides it.
    pub fn for_device_type(device_type: wgpu::DeviceType) -> Self {
        match device_type {
            wgpu::DeviceType::Cpu => StreamShape::CPU,
            _ => StreamShape::GPU,
        }
    }

    /// vec4s one workgroup handles.
    pub fn block_vec4(self) -> u32 {
        self.wg_size * self.vec_per_thread
    }

    /// `WGxVPT`, e.g. `256x4`.
    pub fn name(self) -> String {
        format!("{}x{}", self.wg_size, self.vec_per_thread)
    }

    /// Parses `gpu`, `cpu` or `WGxVPT` (e.g. `16x64`: any shape covering the
    /// optimizer's block of [`StreamShape::GPU`]`.block_vec4()` vec4s).
    ///
    /// ```
    /// use coptim::stream::StreamShape;
    /// assert_eq!(StreamShape::parse("cpu").unwrap(), StreamShape::CPU);
    /// assert_eq!(StreamShape::parse("16x64").unwrap().wg_size, 16);
    /// assert!(StreamShape::parse("16x16").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let shape = match s {
            "gpu" => StreamShape::GPU,
            "cpu" => StreamShape::CPU,
            _ => {
                let parsed = s.split_once('x').and_then(|(w, v)| {
                    Some(StreamShape {
                        wg_size: w.parse().ok()?,
                        vec_per_thread: v.parse().ok()?,
                    })
                });
                parsed.ok_or_else(|| {
                    Error::InvalidConfig(format!("stream shape `{s}`: expected gpu, cpu or WGxVPT"))
                })?
            }
        };
        let block = StreamShape::GPU.block_vec4();
        if shape.wg_size.checked_mul(shape.vec_per_thread) != Some(block) {
            return Err(Error::InvalidConfig(format!(
                "stream shape `{s}`: workgroup size x vec4s per invocation must be {block}"
            )));
        }
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::StreamShape;

    #[test]
    fn cpu_adapters_get_long_runs_and_gpus_wide_workgroups() {
        assert_eq!(
            StreamShape::for_device_type(wgpu::DeviceType::Cpu),
            StreamShape::CPU
        );
        for t in [
            wgpu::DeviceType::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu,
            wgpu::DeviceType::Other,
        ] {
            assert_eq!(StreamShape::for_device_type(t), StreamShape::GPU);
        }
    }

    #[test]
    fn both_shapes_cover_the_same_block() {
        assert_eq!(StreamShape::CPU.block_vec4(), StreamShape::GPU.block_vec4());
    }
}
