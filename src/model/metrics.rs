//! Non-blocking readback of each recorded batch's loss and correct count.
//!
//! After a batch's forward pass, its loss and correct count (8 bytes) go through the
//! crate's [`ReadbackQueue`], so reading them never stalls the GPU queue and every
//! batch's metrics arrive, in order.

use crate::arena::ReadbackQueue;
use crate::arena::readback::Source;
use crate::context::GpuContext;
use crate::error::Result;

/// Bytes of one batch's metrics: loss (f32) and correct count (f32).
const METRICS_BYTES: u64 = 8;

/// The loss and accuracy of one recorded batch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BatchMetrics {
    /// The value returned by the `record_*` call that produced it (0, 1, 2, ...).
    pub step: u64,
    /// Mean softmax cross-entropy over the batch.
    pub loss: f32,
    /// Samples whose highest logit is at the label.
    pub correct: u32,
    /// Samples in the batch.
    pub batch_size: usize,
}

impl BatchMetrics {
    /// `correct / batch_size`.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.batch_size.max(1) as f64
    }
}

/// What a queued record belongs to: (step, batch size).
type BatchTag = (u64, usize);

/// The loss and correct count of every recorded batch, in flight, on the crate's one
/// readback queue.
#[derive(Debug)]
pub(crate) struct MetricsQueue {
    queue: ReadbackQueue<BatchTag>,
}

impl Default for MetricsQueue {
    fn default() -> Self {
        Self {
            queue: ReadbackQueue::new("coptim batch metrics"),
        }
    }
}

impl MetricsQueue {
    /// Records copies of `loss` and `correct` (one f32 each) into a staging buffer
    /// that maps when `encoder` is submitted.
    pub fn record(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        loss: &crate::nn::Tensor,
        correct: &crate::nn::Tensor,
        step: u64,
        batch_size: usize,
    ) {
        fn scalar(t: &crate::nn::Tensor) -> Source<'_> {
            Source {
                buffer: t.buffer(),
                offset: t.offset(),
                size: METRICS_BYTES / 2,
            }
        }
        self.queue.record(
            ctx,
            encoder,
            &[scalar(loss), scalar(correct)],
            (step, batch_size),
        );
    }

    /// Every metric whose readback has completed, oldest first, without waiting.
    pub fn poll(&mut self, ctx: &GpuContext) -> Result<Vec<BatchMetrics>> {
        Ok(self.queue.poll(ctx)?.into_iter().map(to_metrics).collect())
    }

    /// The oldest metric in flight, waiting for it. Fails if nothing was recorded, or
    /// (natively) if its encoder was never submitted.
    pub async fn next(&mut self, ctx: &GpuContext) -> Result<BatchMetrics> {
        Ok(to_metrics(self.queue.next(ctx).await?))
    }
}

fn to_metrics(((step, batch_size), bytes): (BatchTag, Vec<u8>)) -> BatchMetrics {
    let values: [f32; 2] = bytemuck::pod_read_unaligned(&bytes[..METRICS_BYTES as usize]);
    BatchMetrics {
        step,
        loss: values[0],
        correct: values[1] as u32,
        batch_size,
    }
}
