//! Where each tensor lives: segments (buffers), aligned offsets and binding windows.
//!
//! A [`Layout`] is pure bookkeeping, computed on the CPU from tensor shapes and the
//! device limits; every arena built from it (parameters, gradients, each optimizer
//! state) places tensor `i` at the same element offset of the same segment.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Size of one f32 element in bytes.
pub const F32_BYTES: u64 = 4;

/// The device limits a layout must respect, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaLimits {
    /// Every tensor starts at a multiple of this (the device's
    /// `min_storage_buffer_offset_alignment`, at least 16 for vec4 access).
    pub align_bytes: u64,
    /// Largest storage binding (`max_storage_buffer_binding_size`).
    pub max_binding_bytes: u64,
    /// Largest buffer (`max_buffer_size`).
    pub max_buffer_bytes: u64,
}

impl ArenaLimits {
    /// The limits of a device.
    pub fn from_limits(limits: &wgpu::Limits) -> Self {
        let align = u64::from(limits.min_storage_buffer_offset_alignment).max(16);
        let binding = round_down(limits.max_storage_buffer_binding_size, align);
        let buffer = round_down(limits.max_buffer_size, align);
        Self {
            align_bytes: align,
            max_binding_bytes: binding.min(buffer),
            max_buffer_bytes: buffer,
        }
    }

    /// The same limits with smaller binding and buffer sizes (used by tests to force
    /// several segments and windows with small tensors).
    pub fn capped(self, max_binding_bytes: u64, max_buffer_bytes: u64) -> Self {
        let binding = round_down(
            max_binding_bytes.min(self.max_binding_bytes),
            self.align_bytes,
        );
        let buffer = round_down(
            max_buffer_bytes.min(self.max_buffer_bytes),
            self.align_bytes,
        );
        Self {
            align_bytes: self.align_bytes,
            max_binding_bytes: binding.min(buffer),
            max_buffer_bytes: buffer,
        }
    }

    fn align_elems(&self) -> u64 {
        self.align_bytes / F32_BYTES
    }
}

/// Index of a tensor in a [`Layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// One tensor's name, shape and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Unique name, e.g. `blocks.0.attn.qkv.weight`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Number of elements.
    pub len: u64,
    /// Which segment (buffer) holds it.
    pub segment: usize,
    /// Offset in elements from the start of the segment, a multiple of the alignment.
    pub offset: u64,
}

/// A contiguous element range of one segment that a kernel binds at once
/// (at most `max_binding_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The segment.
    pub segment: usize,
    /// First element of the window in the segment (aligned).
    pub start: u64,
    /// Number of elements.
    pub len: u64,
}

/// Placement of named tensors in aligned, limit-respecting segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    segment_lens: Vec<u64>,
    limits: ArenaLimits,
}

impl Layout {
    /// Places `tensors` (name, shape) in order. Tensors share a segment up to
    /// `max_binding_bytes`; a tensor larger than that gets a segment of its own (up to
    /// `max_buffer_bytes`), which kernels bind in several windows.
    ///
    /// ```
    /// use coptim::arena::{ArenaLimits, Layout};
    /// let limits = ArenaLimits { align_bytes: 256, max_binding_bytes: 1 << 20, max_buffer_bytes: 1 << 30 };
    /// let layout = Layout::new(&[("w", vec![3, 5]), ("b", vec![5])], limits).unwrap();
    /// assert_eq!(layout.info(layout.id("b").unwrap()).offset, 64);
    /// ```
    pub fn new<S: AsRef<str>>(tensors: &[(S, Vec<usize>)], limits: ArenaLimits) -> Result<Self> {
        if limits.align_bytes == 0 || !limits.align_bytes.is_multiple_of(16) {
            return Err(Error::InvalidConfig(format!(
                "alignment {} is not a positive multiple of 16 bytes",
                limits.align_bytes
            )));
        }
        let align = limits.align_elems();
        let binding_elems = limits.max_binding_bytes / F32_BYTES;
        let buffer_elems = limits.max_buffer_bytes / F32_BYTES;
        let mut infos = Vec::with_capacity(tensors.len());
        let mut index = HashMap::with_capacity(tensors.len());
        let mut segment_lens: Vec<u64> = Vec::new();
        // The segment still open for packing small tensors, if any.
        let mut open: Option<usize> = None;
        for (name, shape) in tensors {
            let name = name.as_ref().to_string();
            let len: u64 = shape.iter().map(|&d| d as u64).product();
            if len == 0 {
                return Err(Error::EmptyTensor(name));
            }
            if index.contains_key(&name) {
                return Err(Error::DuplicateTensor(name));
            }
            let padded = round_up(len, align);
            if padded > buffer_elems {
                return Err(Error::LimitExceeded {
                    what: format!("tensor `{name}`"),
                    needed: padded * F32_BYTES,
                    allowed: limits.max_buffer_bytes,
                });
            }
            let (segment, offset) = if padded > binding_elems {
                segment_lens.push(padded);
                (segment_lens.len() - 1, 0)
            } else {
                match open {
                    Some(s) if segment_lens[s] + padded <= binding_elems => {
                        let offset = segment_lens[s];
                        segment_lens[s] += padded;
                        (s, offset)
                    }
                    _ => {
                        segment_lens.push(padded);
                        open = Some(segment_lens.len() - 1);
                        (segment_lens.len() - 1, 0)
                    }
                }
            };
            index.insert(name.clone(), infos.len());
            infos.push(TensorInfo {
                name,
                shape: shape.clone(),
                len,
                segment,
                offset,
            });
        }
        Ok(Self {
            tensors: infos,
            index,
            segment_lens,
            limits,
        })
    }

    /// The tensor called `name`.
    pub fn id(&self, name: &str) -> Result<TensorId> {
        self.index
            .get(name)
            .map(|&i| TensorId(i))
            .ok_or_else(|| Error::UnknownTensor(name.to_string()))
    }

    /// Name, shape and place of a tensor.
    pub fn info(&self, id: TensorId) -> &TensorInfo {
        &self.tensors[id.0]
    }

    /// All tensors in declaration order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Number of tensors.
    pub fn num_tensors(&self) -> usize {
        self.tensors.len()
    }

    /// Total number of elements of all tensors (without padding).
    pub fn total_len(&self) -> u64 {
        self.tensors.iter().map(|t| t.len).sum()
    }

    /// Length of each segment in elements (padded).
    pub fn segment_lens(&self) -> &[u64] {
        &self.segment_lens
    }

    /// The limits this layout was made for.
    pub fn limits(&self) -> ArenaLimits {
        self.limits
    }

    /// The binding windows that cover every segment, each at most
    /// `max_binding_bytes` and starting at an element aligned for f32 and for
    /// 16-bit state arenas alike.
    pub fn windows(&self) -> Vec<Window> {
        let max = round_down(
            self.limits.max_binding_bytes / F32_BYTES,
            2 * self.limits.align_elems(),
        );
        let mut out = Vec::new();
        for (segment, &len) in self.segment_lens.iter().enumerate() {
            let mut start = 0;
            while start < len {
                let n = max.min(len - start);
                out.push(Window {
                    segment,
                    start,
                    len: n,
                });
                start += n;
            }
        }
        out
    }
}

/// Rounds `x` up to a multiple of `to`.
pub(crate) fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

/// Rounds `x` down to a multiple of `to`.
pub(crate) fn round_down(x: u64, to: u64) -> u64 {
    x / to * to
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(binding: u64, buffer: u64) -> ArenaLimits {
        ArenaLimits {
            align_bytes: 256,
            max_binding_bytes: binding,
            max_buffer_bytes: buffer,
        }
    }

    #[test]
    fn packs_aligned_and_splits_segments() {
        let l = Layout::new(
            &[("a", vec![1]), ("b", vec![100]), ("c", vec![300])],
            limits(1024, 1 << 20),
        )
        .unwrap();
        let t = l.tensors();
        assert_eq!((t[0].segment, t[0].offset), (0, 0));
        assert_eq!((t[1].segment, t[1].offset), (0, 64));
        // 64 + 128 = 192 elements used; c needs 320 > 256 - 192: new segment, and
        // 320 > 256 elements per binding, so it gets its own segment and two windows.
        assert_eq!(t[2].segment, 1);
        assert_eq!(l.windows().len(), 3);
    }

    #[test]
    fn rejects_bad_tensors() {
        let lim = limits(1024, 4096);
        assert!(matches!(
            Layout::new(&[("a", vec![0])], lim),
            Err(Error::EmptyTensor(_))
        ));
        assert!(matches!(
            Layout::new(&[("a", vec![1]), ("a", vec![2])], lim),
            Err(Error::DuplicateTensor(_))
        ));
        assert!(matches!(
            Layout::new(&[("a", vec![2000])], lim),
            Err(Error::LimitExceeded { .. })
        ));
        let l = Layout::new(&[("a", vec![1])], lim).unwrap();
        assert!(matches!(l.id("b"), Err(Error::UnknownTensor(_))));
    }
}
