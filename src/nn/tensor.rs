//! [`Tensor`]: a typed, shaped view of a range of a GPU buffer.

use crate::arena::{Arena, TensorId, UploadRing};
use crate::context::GpuContext;
use crate::error::{Error, Result};

/// Element type of a [`Tensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: values, activations and gradients.
    F32,
    /// 32-bit unsigned integer: class labels.
    U32,
}

/// A host element type of a tensor, and its [`DType`].
pub trait Element: bytemuck::Pod {
    /// The tensor element type these values fill.
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}

impl Element for u32 {
    const DTYPE: DType = DType::U32;
}

/// A GPU tensor: a buffer, the byte offset where the tensor starts (aligned for
/// binding) and a row-major shape.
///
/// Parameters are views into a [`ParamStore`](crate::ParamStore)'s `params` arena (so
/// an optimizer steps them in place) and their gradients views of the same place in
/// `grads`; activations own a buffer each. Cloning is cheap and shares the buffer.
#[derive(Debug, Clone)]
pub struct Tensor {
    buffer: wgpu::Buffer,
    offset: u64,
    shape: Vec<usize>,
    dtype: DType,
}

/// Bytes of one element of either [`DType`].
const ELEM_BYTES: u64 = 4;

impl Tensor {
    /// Allocates a zero-filled tensor with a buffer of its own, usable as storage and
    /// for copies in both directions. Fails for an empty shape or one that exceeds the
    /// device's binding limit.
    pub fn zeros(ctx: &GpuContext, shape: &[usize], dtype: DType, label: &str) -> Result<Self> {
        let len = numel(shape);
        if len == 0 {
            return Err(Error::EmptyTensor(label.to_string()));
        }
        let size = len as u64 * ELEM_BYTES;
        let allowed = ctx
            .limits()
            .max_storage_buffer_binding_size
            .min(ctx.limits().max_buffer_size);
        if size > allowed || len > u32::MAX as usize {
            return Err(Error::LimitExceeded {
                what: format!("tensor `{label}` of shape {shape:?}"),
                needed: size,
                allowed,
            });
        }
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Self {
            buffer,
            offset: 0,
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// The view of one tensor of an arena (f32), e.g. `store.params` or `store.grads`.
    /// Fails with [`Error::LimitExceeded`] for a tensor too large to bind at once.
    pub fn from_arena(arena: &Arena, id: TensorId) -> Result<Self> {
        let binding = arena.binding(id)?;
        Ok(Self {
            buffer: binding.buffer.clone(),
            offset: binding.offset,
            shape: arena.layout().info(id).shape.clone(),
            dtype: DType::F32,
        })
    }

    /// The shape, row-major.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }

    /// Always false: tensors have at least one element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The buffer holding the tensor.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Byte offset of the first element in [`Tensor::buffer`].
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Size in bytes.
    pub fn byte_size(&self) -> u64 {
        self.len() as u64 * ELEM_BYTES
    }

    /// A binding of exactly this tensor.
    pub fn binding(&self) -> wgpu::BufferBinding<'_> {
        wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.byte_size()),
        }
    }

    /// Records a copy of `values` (`f32` values or `u32` labels) into the tensor: the
    /// data goes through one of the persistent staging buffers of `uploads`, copied in
    /// encoder order, so several recorded steps each see their own data. Fails unless
    /// the length and the element type match.
    pub fn record_write<T: Element>(
        &self,
        uploads: &mut UploadRing,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        values: &[T],
    ) -> Result<()> {
        self.check_write(values.len(), T::DTYPE)?;
        uploads.record_write(
            ctx,
            encoder,
            &self.buffer,
            self.offset,
            bytemuck::cast_slice(values),
        );
        Ok(())
    }

    /// Writes `values` through the queue (before the next submission's commands).
    pub fn write_f32(&self, ctx: &GpuContext, values: &[f32]) -> Result<()> {
        self.check_write(values.len(), DType::F32)?;
        ctx.queue()
            .write_buffer(&self.buffer, self.offset, bytemuck::cast_slice(values));
        Ok(())
    }

    /// Reads an f32 tensor back (async; see [`Tensor::read_f32_blocking`]).
    pub async fn read_f32(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        let bytes =
            crate::arena::read_buffer(ctx, &self.buffer, self.offset, self.byte_size()).await?;
        Ok(bytemuck::pod_collect_to_vec(
            &bytes[..self.byte_size() as usize],
        ))
    }

    /// Blocking form of [`Tensor::read_f32`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32_blocking(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        pollster::block_on(self.read_f32(ctx))
    }

    fn check_write(&self, len: usize, dtype: DType) -> Result<()> {
        if dtype != self.dtype {
            return Err(Error::InvalidConfig(format!(
                "writing {dtype:?} values into a {:?} tensor",
                self.dtype
            )));
        }
        if len != self.len() {
            return Err(Error::LengthMismatch {
                what: format!("tensor of shape {:?}", self.shape),
                expected: self.len() as u64,
                got: len as u64,
            });
        }
        Ok(())
    }
}

/// Number of elements of a shape.
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}
