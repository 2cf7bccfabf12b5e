//! Views of a caller's buffers: where one tensor's f32 values live, and the checks a
//! view must pass before coptim binds it.

use crate::arena::layout::F32_BYTES;
use crate::error::{Error, Result};

/// One tensor's contiguous f32 values inside a buffer the caller owns: the buffer and
/// the byte offset of the first element (a multiple of 4; it need not be aligned to
/// `min_storage_buffer_offset_alignment`, coptim binds the aligned-down range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferView {
    /// The caller's buffer (needs `STORAGE` usage).
    pub buffer: wgpu::Buffer,
    /// Byte offset of the tensor's first element.
    pub offset: u64,
}

impl BufferView {
    /// A view of `buffer` starting `offset` bytes in.
    pub fn new(buffer: &wgpu::Buffer, offset: u64) -> Self {
        Self {
            buffer: buffer.clone(),
            offset,
        }
    }

    /// The byte just past a tensor of `len` elements.
    pub fn end(&self, len: u64) -> u64 {
        self.offset + len * F32_BYTES
    }

    /// Checks usage, alignment and bounds for a tensor of `len` elements; `what`
    /// ("parameters" or "gradients") and `tensor` name it in the error.
    pub fn validate(&self, tensor: &str, what: &str, len: u64) -> Result<()> {
        let invalid = |reason: String| Error::InvalidView {
            tensor: tensor.to_string(),
            reason: format!("{what}: {reason}"),
        };
        if !self.buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(invalid(format!(
                "the buffer lacks STORAGE usage (it has {:?})",
                self.buffer.usage()
            )));
        }
        if !self.offset.is_multiple_of(F32_BYTES) {
            return Err(invalid(format!(
                "byte offset {} is not a multiple of 4 (f32 elements)",
                self.offset
            )));
        }
        let size = self.buffer.size();
        if self.offset > size || len > (size - self.offset) / F32_BYTES {
            return Err(invalid(format!(
                "{len} f32 at byte {} run past the buffer's {size} bytes",
                self.offset
            )));
        }
        Ok(())
    }

    /// Whether this view and `other` share bytes (for `len` and `other_len` elements).
    pub fn overlaps(&self, len: u64, other: &BufferView, other_len: u64) -> bool {
        self.buffer == other.buffer
            && self.offset < other.end(other_len)
            && other.offset < self.end(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_symmetric_and_exact() {
        let ctx = crate::GpuContext::new_blocking(&Default::default()).unwrap();
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let a = BufferView::new(&buffer, 4);
        let b = BufferView::new(&buffer, 12);
        assert!(!a.overlaps(2, &b, 3));
        assert!(a.overlaps(3, &b, 3));
        assert!(b.overlaps(3, &a, 3));
        assert!(a.validate("t", "parameters", 15).is_ok());
        assert!(a.validate("t", "parameters", 16).is_err());
    }
}
