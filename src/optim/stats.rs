//! One readback record per optimizer step: the GPU step status, the per-tensor kept
//! counts and (when the caller names them) the model's loss and other values, copied
//! into the crate's [`ReadbackQueue`] after each step. Records come back in step order
//! and none is dropped: the queue grows while the caller is not reading.

use serde::Serialize;

use crate::arena::ReadbackQueue;
use crate::arena::readback::Source;
use crate::context::GpuContext;
use crate::error::Result;
use crate::optim::gpu_types::{GpuStatus, GpuTensorEntry};
use crate::optim::inputs::StepInputs;

/// Bytes of a loss or another value (one f32).
const VALUE_BYTES: u64 = 4;

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
    /// The learning rate of the default group at this step.
    pub lr: f64,
    /// The loss the caller named in the step's inputs, if any.
    pub loss: Option<f32>,
    /// The values the caller named with
    /// [`StepInputs::with_value`](crate::optim::StepInputs::with_value), in order.
    pub values: Vec<f32>,
    /// Kept (sign-agreeing) coordinates per tensor (all of them when caution is off;
    /// none on a skipped step).
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

/// What the CPU knows of a recorded step.
#[derive(Debug, Clone, Copy)]
struct StepTag {
    scheduled: u64,
    lr: f64,
    has_loss: bool,
}

/// The per-step records in flight.
#[derive(Debug)]
pub(crate) struct StatsQueue {
    queue: ReadbackQueue<StepTag>,
    status: wgpu::Buffer,
    table: wgpu::Buffer,
    numel: Vec<u64>,
    caution: bool,
}

impl StatsQueue {
    /// Records of the optimizer whose step status and tensor table are `status` and
    /// `table`, for tensors of `numel` elements.
    pub fn new(
        status: &wgpu::Buffer,
        table: &wgpu::Buffer,
        numel: Vec<u64>,
        caution: bool,
    ) -> Self {
        Self {
            queue: ReadbackQueue::new("coptim step record"),
            status: status.clone(),
            table: table.clone(),
            numel,
            caution,
        }
    }

    /// Records the copies of one step's status, tensor table, loss and values.
    pub fn record(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &StepInputs<'_>,
        scheduled: u64,
        lr: f64,
    ) {
        let mut sources = vec![
            Source {
                buffer: &self.status,
                offset: 0,
                size: std::mem::size_of::<GpuStatus>() as u64,
            },
            Source {
                buffer: &self.table,
                offset: 0,
                size: (self.numel.len() * std::mem::size_of::<GpuTensorEntry>()) as u64,
            },
        ];
        for &(buffer, offset) in inputs.loss().iter().chain(inputs.values()) {
            sources.push(Source {
                buffer,
                offset,
                size: VALUE_BYTES,
            });
        }
        let tag = StepTag {
            scheduled,
            lr,
            has_loss: inputs.loss().is_some(),
        };
        self.queue.record(ctx, encoder, &sources, tag);
    }

    /// Records not yet returned.
    pub fn in_flight(&self) -> usize {
        self.queue.in_flight()
    }

    /// Staging buffers the records use.
    pub fn staging_buffers(&self) -> usize {
        self.queue.staging_buffers()
    }

    /// Every completed record, in step order, without waiting.
    pub fn poll(&mut self, ctx: &GpuContext) -> Result<Vec<StepStats>> {
        let done = self.queue.poll(ctx)?;
        Ok(done.into_iter().map(|r| self.decode(r)).collect())
    }

    /// The oldest record not yet returned, waiting for it.
    pub async fn next(&mut self, ctx: &GpuContext) -> Result<StepStats> {
        let record = self.queue.next(ctx).await?;
        Ok(self.decode(record))
    }

    fn decode(&self, (tag, bytes): (StepTag, Vec<u8>)) -> StepStats {
        let status_bytes = std::mem::size_of::<GpuStatus>();
        let entry_bytes = std::mem::size_of::<GpuTensorEntry>();
        let status: GpuStatus = bytemuck::pod_read_unaligned(&bytes[..status_bytes]);
        let table_end = status_bytes + self.numel.len() * entry_bytes;
        let skipped = status.found_inf != 0;
        // A skipped step kept nothing, whatever its count pass found.
        let kept = bytes[status_bytes..table_end]
            .chunks_exact(entry_bytes)
            .map(bytemuck::pod_read_unaligned::<GpuTensorEntry>)
            .zip(&self.numel)
            .map(|(e, &n)| match (skipped, self.caution) {
                (true, _) => 0,
                (false, true) => e.kept as u64,
                (false, false) => n,
            })
            .collect();
        // The loss (if named), then the caller's values: the rest of the record.
        let mut values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[table_end..]);
        let loss = tag.has_loss.then(|| values.remove(0));
        StepStats {
            scheduled_step: tag.scheduled,
            completed_steps: status.step as u64,
            skipped,
            grad_norm: status.grad_norm,
            lr: tag.lr,
            loss,
            values,
            kept,
            numel: self.numel.clone(),
        }
    }
}
