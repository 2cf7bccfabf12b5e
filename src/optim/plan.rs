//! The dispatch plan: block tables that cut every tensor into workgroup-sized blocks
//! (multi-tensor apply), grouped into dispatches whose parameter, gradient and state
//! ranges each fit one storage binding, with 2-D grids for dispatches with more
//! blocks than one dispatch dimension allows.
//!
//! The state lives in coptim's arenas (a [`Layout`]); parameters and gradients can be
//! anywhere in the caller's buffers, so a block records its first element in each of
//! the three bindings.
//!
//! A tensor can be cut into segments (contiguous runs of `seg_len` elements: the rows
//! of AdamP's channel view) whose sums the measuring pass takes per block piece
//! (`shaders/tensor_segments.wgsl`). Its blocks are then short enough to touch at most
//! [`SEGMENT_PIECES`] segments: [`segment_block_len`].

use crate::arena::{Layout, Window};
use crate::error::{Error, Result};
use crate::optim::kernels::{BLOCK_ELEMS, SEGMENT_PIECES};

/// The longest block of a tensor cut into segments of `seg_len` elements (0: no
/// segments) that touches at most [`SEGMENT_PIECES`] segments wherever it starts: a
/// multiple of 4 (state stays vec4-aligned) of at most `(SEGMENT_PIECES - 1) * seg_len`
/// elements, and at least 4.
pub fn segment_block_len(seg_len: u64) -> u64 {
    if seg_len == 0 {
        return BLOCK_ELEMS;
    }
    ((SEGMENT_PIECES - 1) * seg_len / 4 * 4).clamp(4, BLOCK_ELEMS)
}

/// One block of work, as the kernels read it (`Block` in optim_common.wgsl).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuBlock {
    /// Tensor index.
    pub tensor: u32,
    /// Elements in the block.
    pub len: u32,
    /// Block number across all dispatches.
    pub global: u32,
    /// First element in the state binding (a multiple of 4).
    pub state_start: u32,
    /// First element in the parameter binding.
    pub param_start: u32,
    /// First element in the gradient binding.
    pub grad_start: u32,
    /// First element within the tensor.
    pub elem: u32,
    /// Padding (the WGSL struct's `pad0`).
    pub pad: u32,
}

/// Where one tensor's parameters and gradients live: (buffer index, byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Buffer index and byte offset of the parameters.
    pub param: (usize, u64),
    /// Buffer index and byte offset of the gradients.
    pub grad: (usize, u64),
}

/// A byte range of one buffer that a dispatch binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Buffer index.
    pub buffer: usize,
    /// First byte (aligned to the device's storage offset alignment).
    pub offset: u64,
    /// Bytes bound.
    pub size: u64,
}

/// The blocks of one dispatch, the bindings they index and the grid that covers them.
#[derive(Debug, Clone)]
pub struct WindowPlan {
    /// The state window.
    pub window: Window,
    /// The parameter binding.
    pub param: Span,
    /// The gradient binding.
    pub grad: Span,
    /// Its blocks, in element order.
    pub blocks: Vec<GpuBlock>,
    /// Workgroups along x and y.
    pub grid: (u32, u32),
}

/// Where each tensor's blocks are in the global numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorBlocks {
    /// First global block.
    pub first: u32,
    /// Number of blocks.
    pub count: u32,
}

/// Block tables for a whole parameter set.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One entry per dispatch.
    pub windows: Vec<WindowPlan>,
    /// One entry per tensor.
    pub tensors: Vec<TensorBlocks>,
    /// Total number of blocks.
    pub total_blocks: u32,
}

/// A grid of at most `max_per_dim` workgroups per dimension covering `n` workgroups.
pub fn grid_for(n: u32, max_per_dim: u32) -> Result<(u32, u32)> {
    let x = n.clamp(1, max_per_dim);
    let y = n.div_ceil(x).max(1);
    if y > max_per_dim {
        return Err(Error::LimitExceeded {
            what: "workgroups in one dispatch".into(),
            needed: n as u64,
            allowed: max_per_dim as u64 * max_per_dim as u64,
        });
    }
    Ok((x, y))
}

/// The used byte range of one buffer in an open dispatch.
#[derive(Debug, Clone, Copy)]
struct Used {
    buffer: usize,
    lo: u64,
    hi: u64,
}

impl Used {
    /// Elements `[r, r_end)` of a tensor at (buffer, byte offset) `at`, capped to what
    /// fits one binding together with this range (`None`: another buffer, or nothing
    /// fits). Returns the new end element.
    fn fit(&self, at: (usize, u64), r: u64, r_end: u64, align: u64, max: u64) -> Option<u64> {
        if at.0 != self.buffer {
            return None;
        }
        let base = (self.lo.min(at.1 + 4 * r)) / align * align;
        if self.hi > base + max || base + max < at.1 + 4 * r {
            return None;
        }
        Some(r_end.min((base + max - at.1) / 4))
    }

    fn extend(&mut self, at: (usize, u64), r: u64, e: u64) {
        self.lo = self.lo.min(at.1 + 4 * r);
        self.hi = self.hi.max(at.1 + 4 * e);
    }

    /// The binding that covers the range: aligned start, size rounded up to whole
    /// vec4s but kept inside the buffer.
    fn span(&self, align: u64, buffer_sizes: &[u64]) -> Span {
        let offset = self.lo / align * align;
        let end = self.hi.next_multiple_of(16).min(buffer_sizes[self.buffer]);
        Span {
            buffer: self.buffer,
            offset,
            size: end - offset,
        }
    }
}

/// A dispatch being filled.
struct Open {
    param: Used,
    grad: Used,
    blocks: Vec<GpuBlock>,
}

/// Builds the plan: see the module documentation.
struct Planner<'a> {
    layout: &'a Layout,
    places: &'a [Placement],
    seg_lens: &'a [u64],
    buffer_sizes: &'a [u64],
    max_dim: u32,
    windows: Vec<WindowPlan>,
    tensors: Vec<TensorBlocks>,
    global: u64,
}

impl Planner<'_> {
    /// The end of the piece of tensor `t` from element `r` that fits `open` (0 if
    /// nothing does); interior ends are multiples of 4 so state stays vec4-aligned.
    fn piece_end(&self, open: &Open, t: usize, r: u64, r_end: u64) -> u64 {
        let limits = self.layout.limits();
        let (align, max) = (limits.align_bytes, limits.max_binding_bytes);
        let place = self.places[t];
        let p = open.param.fit(place.param, r, r_end, align, max);
        let g = open.grad.fit(place.grad, r, r_end, align, max);
        match (p, g) {
            (Some(p), Some(g)) => {
                let e = p.min(g);
                if e == r_end { e } else { e / 4 * 4 }
            }
            _ => 0,
        }
    }

    fn open_at(&self, t: usize, r: u64) -> Open {
        let place = self.places[t];
        let used = |at: (usize, u64)| Used {
            buffer: at.0,
            lo: at.1 + 4 * r,
            hi: at.1 + 4 * r,
        };
        Open {
            param: used(place.param),
            grad: used(place.grad),
            blocks: Vec::new(),
        }
    }

    /// Cuts elements `[r, e)` of tensor `t` into blocks of `open`.
    fn push_blocks(
        &mut self,
        open: &mut Open,
        t: usize,
        r: u64,
        e: u64,
        state_start: u64,
    ) -> Result<()> {
        let place = self.places[t];
        open.param.extend(place.param, r, e);
        open.grad.extend(place.grad, r, e);
        let block_len = segment_block_len(self.seg_lens[t]);
        let mut k = r;
        while k < e {
            let n = block_len.min(e - k);
            if self.global >= u32::MAX as u64 {
                return Err(Error::LimitExceeded {
                    what: "blocks in one optimizer".into(),
                    needed: self.global,
                    allowed: u32::MAX as u64,
                });
            }
            // Parameter and gradient starts are absolute bytes until the dispatch closes.
            open.blocks.push(GpuBlock {
                tensor: t as u32,
                len: n as u32,
                global: self.global as u32,
                state_start: (state_start + k - r) as u32,
                param_start: 0,
                grad_start: 0,
                elem: k as u32,
                pad: 0,
            });
            let tb = &mut self.tensors[t];
            tb.first = tb.first.min(self.global as u32);
            tb.count += 1;
            self.global += 1;
            k += n;
        }
        Ok(())
    }

    /// Turns `open` into a dispatch, making block starts relative to its bindings.
    fn close(&mut self, window: Window, open: Open) -> Result<()> {
        let align = self.layout.limits().align_bytes;
        let param = open.param.span(align, self.buffer_sizes);
        let grad = open.grad.span(align, self.buffer_sizes);
        let mut blocks = open.blocks;
        for b in &mut blocks {
            let t = b.tensor as usize;
            let info = self.layout.info(crate::arena::TensorId(t));
            let r = b.state_start as u64 + window.start - info.offset;
            let place = self.places[t];
            b.param_start = ((place.param.1 + 4 * r - param.offset) / 4) as u32;
            b.grad_start = ((place.grad.1 + 4 * r - grad.offset) / 4) as u32;
        }
        let grid = grid_for(blocks.len() as u32, self.max_dim)?;
        self.windows.push(WindowPlan {
            window,
            param,
            grad,
            blocks,
            grid,
        });
        Ok(())
    }

    /// Plans every tensor piece inside one state window.
    fn plan_window(&mut self, window: Window) -> Result<()> {
        let w_end = window.start + window.len;
        let mut open: Option<Open> = None;
        for t in 0..self.layout.num_tensors() {
            let info = self.layout.info(crate::arena::TensorId(t)).clone();
            let lo = info.offset.max(window.start);
            let hi = (info.offset + info.len).min(w_end);
            if info.segment != window.segment || lo >= hi {
                continue;
            }
            let (mut r, r_end) = (lo - info.offset, hi - info.offset);
            while r < r_end {
                let mut cur = open.take().unwrap_or_else(|| self.open_at(t, r));
                let mut e = self.piece_end(&cur, t, r, r_end);
                if e <= r {
                    self.close(window, cur)?;
                    cur = self.open_at(t, r);
                    e = self.piece_end(&cur, t, r, r_end);
                }
                if e <= r {
                    return Err(Error::LimitExceeded {
                        what: format!("binding of tensor `{}`", info.name),
                        needed: 4 * BLOCK_ELEMS,
                        allowed: self.layout.limits().max_binding_bytes,
                    });
                }
                self.push_blocks(&mut cur, t, r, e, info.offset + r - window.start)?;
                open = Some(cur);
                r = e;
            }
        }
        if let Some(cur) = open {
            self.close(window, cur)?;
        }
        Ok(())
    }
}

impl Plan {
    /// Cuts every tensor into blocks of `BLOCK_ELEMS` elements (shorter for a tensor
    /// with segments of `seg_lens[t]` elements: [`segment_block_len`]): state window by
    /// state window of `layout`, and within a window into as few dispatches as the
    /// parameter and gradient buffers (`places`, `buffer_sizes`) allow.
    pub fn new(
        layout: &Layout,
        places: &[Placement],
        seg_lens: &[u64],
        buffer_sizes: &[u64],
        max_workgroups_per_dim: u32,
    ) -> Result<Self> {
        let mut planner = Planner {
            layout,
            places,
            seg_lens,
            buffer_sizes,
            max_dim: max_workgroups_per_dim,
            windows: Vec::new(),
            tensors: vec![
                TensorBlocks {
                    first: u32::MAX,
                    count: 0
                };
                layout.num_tensors()
            ],
            global: 0,
        };
        for window in layout.windows() {
            planner.plan_window(window)?;
        }
        Ok(Self {
            windows: planner.windows,
            tensors: planner.tensors,
            total_blocks: planner.global as u32,
        })
    }

    /// The plan of a layout whose parameters and gradients sit where its state does
    /// (buffers `0..segments` for parameters, `segments..2*segments` for gradients).
    pub fn for_arena(layout: &Layout, max_workgroups_per_dim: u32) -> Result<Self> {
        let segments = layout.segment_lens().len();
        let places: Vec<Placement> = layout
            .tensors()
            .iter()
            .map(|t| Placement {
                param: (t.segment, 4 * t.offset),
                grad: (segments + t.segment, 4 * t.offset),
            })
            .collect();
        let sizes: Vec<u64> = layout.segment_lens().iter().map(|&l| 4 * l).collect();
        let sizes = [sizes.clone(), sizes].concat();
        let seg_lens = vec![0; places.len()];
        Self::new(layout, &places, &seg_lens, &sizes, max_workgroups_per_dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::ArenaLimits;

    /// Arena limits with binding windows of `bytes`.
    fn windows_of(bytes: u64) -> ArenaLimits {
        ArenaLimits {
            align_bytes: 256,
            max_binding_bytes: bytes,
            max_buffer_bytes: 1 << 24,
        }
    }

    #[test]
    fn blocks_cover_every_element_once() {
        let shapes = [
            ("a", vec![1]),
            ("b", vec![10_000]),
            ("c", vec![40_000]),
            ("d", vec![255]),
        ];
        let layout = Layout::new(&shapes, windows_of(64 * 1024)).unwrap();
        let plan = Plan::for_arena(&layout, 3).unwrap();
        for (t, info) in layout.tensors().iter().enumerate() {
            let covered: u64 = plan
                .windows
                .iter()
                .flat_map(|w| w.blocks.iter())
                .filter(|b| b.tensor as usize == t)
                .map(|b| b.len as u64)
                .sum();
            assert_eq!(covered, info.len, "tensor {}", info.name);
        }
        // `c` spans several windows; its global blocks are contiguous.
        let c = plan.tensors[2];
        let globals: Vec<u32> = plan
            .windows
            .iter()
            .flat_map(|w| w.blocks.iter())
            .filter(|b| b.tensor == 2)
            .map(|b| b.global)
            .collect();
        assert_eq!(globals, (c.first..c.first + c.count).collect::<Vec<_>>());
        for w in &plan.windows {
            assert!(w.grid.0 * w.grid.1 >= w.blocks.len() as u32);
            assert!(w.grid.0 <= 3 && w.grid.1 <= 3);
        }
    }

    /// Blocks of tensors with segments (rows of 1, 3, 7, 5000 elements, across 16 KiB
    /// windows) touch at most `SEGMENT_PIECES` segments, start at their `elem`, and
    /// keep state vec4-aligned.
    #[test]
    fn segment_blocks_touch_few_segments() {
        let shapes = [
            ("ones", vec![901, 1]),
            ("three", vec![333, 3]),
            ("seven", vec![1000, 7]),
            ("long", vec![3, 5000]),
            ("vec", vec![4097]),
        ];
        let seg_lens = [1, 3, 7, 5000, 0];
        let layout = Layout::new(&shapes, windows_of(16 * 1024)).unwrap();
        let places: Vec<Placement> = layout
            .tensors()
            .iter()
            .map(|t| Placement {
                param: (0, 4 * t.offset),
                grad: (1, 4 * t.offset),
            })
            .collect();
        let total = 4 * layout.segment_lens().iter().sum::<u64>();
        let plan = Plan::new(&layout, &places, &seg_lens, &[total, total], 65_535).unwrap();
        let mut next = vec![0u64; shapes.len()];
        for b in plan.windows.iter().flat_map(|w| w.blocks.iter()) {
            let t = b.tensor as usize;
            assert_eq!(
                b.elem as u64, next[t],
                "tensor {t}: blocks in order, no gap"
            );
            next[t] += b.len as u64;
            let last = next[t] == layout.info(crate::arena::TensorId(t)).len;
            assert!(
                last || b.len % 4 == 0,
                "interior block of {} elements",
                b.len
            );
            if let Some(&len) = seg_lens.get(t).filter(|&&l| l != 0) {
                let pieces = (b.elem as u64 + b.len as u64 - 1) / len - b.elem as u64 / len + 1;
                assert!(pieces <= SEGMENT_PIECES, "tensor {t}: {pieces} segments");
            }
        }
        assert_eq!(segment_block_len(5000), BLOCK_ELEMS);
        assert_eq!(segment_block_len(1), 4);
        assert_eq!(segment_block_len(7), 48);
    }

    #[test]
    fn grid_splits_past_the_limit() {
        assert_eq!(grid_for(65_536, 65_535).unwrap(), (65_535, 2));
        assert_eq!(grid_for(0, 65_535).unwrap(), (1, 1));
        assert!(grid_for(10, 3).is_err());
    }
}
