//! Non-blocking readback of per-step mask statistics.
//!
//! After each step the optimizer copies the GPU step status and the per-tensor kept
//! counts into one of a few small readback buffers, mapped when the caller submits
//! (`map_buffer_on_submit`). Reading the newest completed slot never waits for the GPU;
//! if every slot is still in flight, that step's statistics are simply not recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;

use crate::context::GpuContext;
use crate::optim::gpu_types::{GpuStatus, GpuTensorEntry};

/// Readback buffers in flight at once.
const SLOTS: usize = 4;

const FREE: u8 = 0;
const IN_FLIGHT: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

/// What one step did, read back from the GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStats {
    /// The scheduled step these statistics belong to (1-based).
    pub scheduled_step: u64,
    /// Completed (not skipped) steps on the GPU after this step.
    pub completed_steps: u64,
    /// The step was skipped because a gradient was NaN or infinite.
    pub skipped: bool,
    /// Global gradient norm before clipping (0 unless clipping is on).
    pub grad_norm: f32,
    /// Kept (sign-agreeing) coordinates per tensor (all of them when caution is off).
    pub kept: Vec<u64>,
    /// Elements per tensor.
    pub numel: Vec<u64>,
}

impl StepStats {
    /// Kept fraction of each tensor.
    pub fn kept_fractions(&self) -> Vec<f64> {
        self.kept
            .iter()
            .zip(&self.numel)
            .map(|(&k, &n)| k as f64 / n as f64)
            .collect()
    }

    /// Kept fraction over all coordinates of the model.
    pub fn kept_fraction(&self) -> f64 {
        let k: u64 = self.kept.iter().sum();
        let n: u64 = self.numel.iter().sum();
        k as f64 / n.max(1) as f64
    }
}

#[derive(Debug)]
struct Slot {
    buffer: wgpu::Buffer,
    state: Arc<AtomicU8>,
    scheduled: u64,
}

/// The ring of readback buffers.
#[derive(Debug)]
pub(crate) struct StatsRing {
    slots: Vec<Slot>,
    status_bytes: u64,
    table_bytes: u64,
    caution: bool,
}

impl StatsRing {
    pub fn new(ctx: &GpuContext, num_tensors: usize, caution: bool) -> Self {
        let status_bytes = std::mem::size_of::<GpuStatus>() as u64;
        let table_bytes = (num_tensors * std::mem::size_of::<GpuTensorEntry>()) as u64;
        let slots = (0..SLOTS)
            .map(|_| Slot {
                buffer: ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("coptim stats readback"),
                    size: status_bytes + table_bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: Arc::new(AtomicU8::new(FREE)),
                scheduled: 0,
            })
            .collect();
        Self {
            slots,
            status_bytes,
            table_bytes,
            caution,
        }
    }

    /// Copies the status and tensor table into a free slot, mapped on submit.
    pub fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        status: &wgpu::Buffer,
        table: &wgpu::Buffer,
        scheduled: u64,
    ) {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.state.load(Ordering::Acquire) == FREE)
        else {
            return;
        };
        encoder.copy_buffer_to_buffer(status, 0, &slot.buffer, 0, self.status_bytes);
        encoder.copy_buffer_to_buffer(table, 0, &slot.buffer, self.status_bytes, self.table_bytes);
        slot.state.store(IN_FLIGHT, Ordering::Release);
        slot.scheduled = scheduled;
        let flag = slot.state.clone();
        encoder.map_buffer_on_submit(&slot.buffer, wgpu::MapMode::Read, .., move |r| {
            flag.store(if r.is_ok() { READY } else { FAILED }, Ordering::Release);
        });
    }

    /// Whether a readback is still on its way (recorded, not yet read).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn in_flight(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.state.load(Ordering::Acquire) == IN_FLIGHT)
    }

    /// The newest ready statistics; frees every ready slot it passes.
    pub fn latest(&mut self, ctx: &GpuContext, numel: &[u64]) -> Option<StepStats> {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = ctx.device().poll(wgpu::PollType::Poll);
        #[cfg(target_arch = "wasm32")]
        let _ = ctx;
        let mut best: Option<StepStats> = None;
        for slot in &mut self.slots {
            match slot.state.load(Ordering::Acquire) {
                READY => {
                    let stats = slot.buffer.get_mapped_range(..).ok().map(|view| {
                        let status: GpuStatus =
                            bytemuck::pod_read_unaligned(&view[..self.status_bytes as usize]);
                        let table: Vec<GpuTensorEntry> = view[self.status_bytes as usize..]
                            .chunks_exact(std::mem::size_of::<GpuTensorEntry>())
                            .map(bytemuck::pod_read_unaligned)
                            .collect();
                        StepStats {
                            scheduled_step: slot.scheduled,
                            completed_steps: status.step as u64,
                            skipped: status.found_inf != 0,
                            grad_norm: status.grad_norm,
                            kept: table
                                .iter()
                                .zip(numel)
                                .map(|(e, &n)| if self.caution { e.kept as u64 } else { n })
                                .collect(),
                            numel: numel.to_vec(),
                        }
                    });
                    slot.buffer.unmap();
                    slot.state.store(FREE, Ordering::Release);
                    if let Some(s) = stats
                        && best
                            .as_ref()
                            .is_none_or(|b| b.scheduled_step < s.scheduled_step)
                    {
                        best = Some(s);
                    }
                }
                FAILED => slot.state.store(FREE, Ordering::Release),
                _ => {}
            }
        }
        best
    }
}
