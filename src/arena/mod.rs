//! Flat GPU storage for many named tensors.
//!
//! A [`Layout`] decides where every tensor lives; an [`Arena`] is one set of GPU
//! buffers that follows it (one arena for parameters, one for gradients, one per
//! optimizer state). Every tensor starts at an offset aligned to the device's
//! `min_storage_buffer_offset_alignment`, so a caller's kernel can bind it alone with
//! [`Arena::binding`]. A [`ParamSet`] names where an optimizer finds each tensor's
//! parameters and gradients: in a [`ParamStore`] or in views of the caller's buffers.

mod layout;
mod param_set;
pub mod readback;
mod transfer;
mod upload;
mod view;

pub use layout::{ArenaLimits, F32_BYTES, Layout, TensorId, TensorInfo, Window};
pub use param_set::{ParamAccess, ParamSet, ParamSpec, ParamTensor};
pub use readback::ReadbackQueue;
pub use transfer::read_buffer;
pub use upload::UploadRing;
pub use view::BufferView;

use std::sync::Arc;

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// How an arena stores its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// bfloat16, two per 32-bit word (works on every adapter).
    Bf16,
    /// IEEE half, two per 32-bit word (kernels use `shader-f16` arithmetic when present).
    F16,
}

impl ElementType {
    /// Bytes per element.
    pub fn bytes(self) -> u64 {
        match self {
            ElementType::F32 => 4,
            ElementType::Bf16 | ElementType::F16 => 2,
        }
    }

    /// The name used in files and reports: `f32`, `bf16`, `f16`.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::Bf16 => "bf16",
            ElementType::F16 => "f16",
        }
    }

    fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            ElementType::F32 => bytemuck::cast_slice(values).to_vec(),
            ElementType::Bf16 => values
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
            ElementType::F16 => values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }

    fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            ElementType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            ElementType::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            ElementType::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }
}

/// One set of GPU buffers holding every tensor of a [`Layout`].
#[derive(Debug, Clone)]
pub struct Arena {
    layout: Arc<Layout>,
    buffers: Vec<wgpu::Buffer>,
    dtype: ElementType,
}

impl Arena {
    /// Creates zero-filled buffers for `layout`, usable as storage and for copies.
    pub fn new(
        ctx: &GpuContext,
        layout: Arc<Layout>,
        dtype: ElementType,
        label: &str,
    ) -> Result<Self> {
        let max = ctx.limits().max_buffer_size;
        let buffers = layout
            .segment_lens()
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let size = (len * dtype.bytes()).next_multiple_of(4);
                if size > max {
                    return Err(Error::LimitExceeded {
                        what: format!("{label} segment {i}"),
                        needed: size,
                        allowed: max,
                    });
                }
                Ok(ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("coptim {label} segment {i}")),
                    size,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layout,
            buffers,
            dtype,
        })
    }

    /// The layout this arena follows.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The element type stored.
    pub fn dtype(&self) -> ElementType {
        self.dtype
    }

    /// The buffer of each segment.
    pub fn buffers(&self) -> &[wgpu::Buffer] {
        &self.buffers
    }

    /// Byte offset and byte size of a tensor inside its segment's buffer.
    pub fn byte_range(&self, id: TensorId) -> (u64, u64) {
        let info = self.layout.info(id);
        let size = (info.len * self.dtype.bytes()).next_multiple_of(4);
        (info.offset * self.dtype.bytes(), size)
    }

    /// A binding of exactly one tensor, for a caller's own bind groups. Fails with
    /// [`Error::LimitExceeded`] for a tensor larger than the device's binding limit.
    pub fn binding(&self, id: TensorId) -> Result<wgpu::BufferBinding<'_>> {
        let info = self.layout.info(id);
        let (offset, size) = self.byte_range(id);
        if size > self.layout.limits().max_binding_bytes {
            return Err(Error::LimitExceeded {
                what: format!("binding of tensor `{}`", info.name),
                needed: size,
                allowed: self.layout.limits().max_binding_bytes,
            });
        }
        Ok(wgpu::BufferBinding {
            buffer: &self.buffers[info.segment],
            offset,
            size: wgpu::BufferSize::new(size),
        })
    }

    /// The buffer holding a tensor.
    pub fn buffer_of(&self, id: TensorId) -> &wgpu::Buffer {
        &self.buffers[self.layout.info(id).segment]
    }

    /// Writes a tensor's values (converted to the arena's element type) through the
    /// queue. The length must equal the tensor's.
    pub fn write(&self, ctx: &GpuContext, id: TensorId, values: &[f32]) -> Result<()> {
        let info = self.layout.info(id);
        if values.len() as u64 != info.len {
            return Err(Error::LengthMismatch {
                what: format!("tensor `{}`", info.name),
                expected: info.len,
                got: values.len() as u64,
            });
        }
        let mut bytes = self.dtype.encode(values);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        let (offset, _) = self.byte_range(id);
        ctx.queue()
            .write_buffer(&self.buffers[info.segment], offset, &bytes);
        Ok(())
    }

    /// Writes a tensor by name.
    pub fn write_named(&self, ctx: &GpuContext, name: &str, values: &[f32]) -> Result<()> {
        self.write(ctx, self.layout.id(name)?, values)
    }

    /// Writes zeros over every tensor.
    pub fn clear(&self, encoder: &mut wgpu::CommandEncoder) {
        for b in &self.buffers {
            encoder.clear_buffer(b, 0, None);
        }
    }

    /// Reads a tensor back as f32 (async; use [`Arena::read_blocking`] natively).
    pub async fn read(&self, ctx: &GpuContext, id: TensorId) -> Result<Vec<f32>> {
        let info = self.layout.info(id);
        let (offset, size) = self.byte_range(id);
        let bytes = read_buffer(ctx, &self.buffers[info.segment], offset, size).await?;
        let mut values = self.dtype.decode(&bytes);
        values.truncate(info.len as usize);
        Ok(values)
    }

    /// Reads a tensor's stored bytes (little-endian elements of the arena's type).
    pub async fn read_bytes(&self, ctx: &GpuContext, id: TensorId) -> Result<Vec<u8>> {
        let info = self.layout.info(id);
        let (offset, size) = self.byte_range(id);
        let mut bytes = read_buffer(ctx, &self.buffers[info.segment], offset, size).await?;
        bytes.truncate((info.len * self.dtype.bytes()) as usize);
        Ok(bytes)
    }

    /// Writes a tensor's stored bytes (little-endian elements of the arena's type);
    /// the length must be exactly the tensor's size in bytes.
    pub fn write_bytes(&self, ctx: &GpuContext, id: TensorId, bytes: &[u8]) -> Result<()> {
        let info = self.layout.info(id);
        let expected = info.len * self.dtype.bytes();
        if bytes.len() as u64 != expected {
            return Err(Error::LengthMismatch {
                what: format!("bytes of tensor `{}`", info.name),
                expected,
                got: bytes.len() as u64,
            });
        }
        let (offset, _) = self.byte_range(id);
        let mut padded = bytes.to_vec();
        padded.resize(padded.len().next_multiple_of(4), 0);
        ctx.queue()
            .write_buffer(&self.buffers[info.segment], offset, &padded);
        Ok(())
    }

    /// Reads a tensor by name.
    pub async fn read_named(&self, ctx: &GpuContext, name: &str) -> Result<Vec<f32>> {
        self.read(ctx, self.layout.id(name)?).await
    }

    /// Blocking form of [`Arena::read_named`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_named_blocking(&self, ctx: &GpuContext, name: &str) -> Result<Vec<f32>> {
        pollster::block_on(self.read_named(ctx, name))
    }

    /// Blocking form of [`Arena::read`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, ctx: &GpuContext, id: TensorId) -> Result<Vec<f32>> {
        pollster::block_on(self.read(ctx, id))
    }

    /// Reads every tensor, in layout order.
    pub async fn read_all(&self, ctx: &GpuContext) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.layout.num_tensors());
        for i in 0..self.layout.num_tensors() {
            out.push(self.read(ctx, TensorId(i)).await?);
        }
        Ok(out)
    }

    /// Blocking form of [`Arena::read_all`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_all_blocking(&self, ctx: &GpuContext) -> Result<Vec<Vec<f32>>> {
        pollster::block_on(self.read_all(ctx))
    }
}

/// Parameters and their gradients: two arenas over one layout. This is what models
/// allocate and what optimizers step.
#[derive(Debug, Clone)]
pub struct ParamStore {
    /// Parameter values (f32).
    pub params: Arena,
    /// Gradients (f32), same layout.
    pub grads: Arena,
}

impl ParamStore {
    /// Allocates parameters and gradients for named tensors with the device's limits.
    ///
    /// ```no_run
    /// # fn main() -> coptim::Result<()> {
    /// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
    /// let store = coptim::ParamStore::new(&ctx, &[("w", vec![64, 32]), ("b", vec![64])])?;
    /// store.params.write_named(&ctx, "b", &[0.0; 64])?;
    /// # Ok(()) }
    /// ```
    pub fn new<S: AsRef<str>>(ctx: &GpuContext, tensors: &[(S, Vec<usize>)]) -> Result<Self> {
        let limits = ArenaLimits::from_limits(ctx.limits());
        Self::with_limits(ctx, tensors, limits)
    }

    /// Like [`ParamStore::new`] with explicit (e.g. smaller) limits.
    pub fn with_limits<S: AsRef<str>>(
        ctx: &GpuContext,
        tensors: &[(S, Vec<usize>)],
        limits: ArenaLimits,
    ) -> Result<Self> {
        let layout = Arc::new(Layout::new(tensors, limits)?);
        Ok(Self {
            params: Arena::new(ctx, layout.clone(), ElementType::F32, "params")?,
            grads: Arena::new(ctx, layout, ElementType::F32, "grads")?,
        })
    }

    /// The shared layout.
    pub fn layout(&self) -> &Arc<Layout> {
        self.params.layout()
    }
}
