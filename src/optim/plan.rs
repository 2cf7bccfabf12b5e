//! The dispatch plan: block tables that cut every tensor of every binding window
//! into workgroup-sized blocks (multi-tensor apply), and 2-D grids for windows with
//! more blocks than one dispatch dimension allows.

use crate::arena::{Layout, Window};
use crate::error::{Error, Result};
use crate::optim::kernels::BLOCK_ELEMS;

/// One block of work, as the kernels read it (`Block` in optim_common.wgsl).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuBlock {
    /// Tensor index.
    pub tensor: u32,
    /// First element relative to the window.
    pub start: u32,
    /// Elements in the block.
    pub len: u32,
    /// Block number across all windows.
    pub global: u32,
}

/// The blocks of one window and the grid that covers them.
#[derive(Debug, Clone)]
pub struct WindowPlan {
    /// The window.
    pub window: Window,
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

/// Block tables for a whole layout.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One entry per binding window.
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

impl Plan {
    /// Cuts every tensor of `layout` into blocks of `BLOCK_ELEMS` elements, window by
    /// window.
    pub fn new(layout: &Layout, max_workgroups_per_dim: u32) -> Result<Self> {
        let mut windows = Vec::new();
        let mut tensors = vec![
            TensorBlocks {
                first: u32::MAX,
                count: 0
            };
            layout.num_tensors()
        ];
        let mut global: u64 = 0;
        for window in layout.windows() {
            let w_end = window.start + window.len;
            let mut blocks = Vec::new();
            for (t, info) in layout.tensors().iter().enumerate() {
                if info.segment != window.segment {
                    continue;
                }
                let t_end = info.offset + info.len;
                let lo = info.offset.max(window.start);
                let hi = t_end.min(w_end);
                if lo >= hi {
                    continue;
                }
                let mut e = lo;
                while e < hi {
                    let n = BLOCK_ELEMS.min(hi - e);
                    if global >= u32::MAX as u64 {
                        return Err(Error::LimitExceeded {
                            what: "blocks in one optimizer".into(),
                            needed: global,
                            allowed: u32::MAX as u64,
                        });
                    }
                    blocks.push(GpuBlock {
                        tensor: t as u32,
                        start: (e - window.start) as u32,
                        len: n as u32,
                        global: global as u32,
                    });
                    let tb = &mut tensors[t];
                    tb.first = tb.first.min(global as u32);
                    tb.count += 1;
                    global += 1;
                    e += n;
                }
            }
            let grid = grid_for(blocks.len() as u32, max_workgroups_per_dim)?;
            windows.push(WindowPlan {
                window,
                blocks,
                grid,
            });
        }
        Ok(Self {
            windows,
            tensors,
            total_blocks: global as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::ArenaLimits;

    #[test]
    fn blocks_cover_every_element_once() {
        let limits = ArenaLimits {
            align_bytes: 256,
            max_binding_bytes: 64 * 1024,
            max_buffer_bytes: 1 << 24,
        };
        let shapes = [
            ("a", vec![1]),
            ("b", vec![10_000]),
            ("c", vec![40_000]),
            ("d", vec![255]),
        ];
        let layout = Layout::new(&shapes, limits).unwrap();
        let plan = Plan::new(&layout, 3).unwrap();
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

    #[test]
    fn grid_splits_past_the_limit() {
        assert_eq!(grid_for(65_536, 65_535).unwrap(), (65_535, 2));
        assert_eq!(grid_for(0, 65_535).unwrap(), (1, 1));
        assert!(grid_for(10, 3).is_err());
    }
}
