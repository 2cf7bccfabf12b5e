//! Non-blocking readback of each recorded batch's loss and correct count.
//!
//! After a batch's forward pass, its loss and correct count (8 bytes) are copied into
//! a small staging buffer mapped when the encoder is submitted
//! (`map_buffer_on_submit`), so reading them never stalls the GPU queue: the next
//! step can be recorded and submitted while earlier metrics are still in flight.
//! Buffers are recycled; none is ever dropped, so every batch's metrics arrive, in
//! order.

use std::collections::VecDeque;

use futures_channel::oneshot;

use crate::context::GpuContext;
use crate::error::{Error, Result};

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

type MapResult = std::result::Result<(), wgpu::BufferAsyncError>;

#[derive(Debug)]
struct Pending {
    step: u64,
    batch_size: usize,
    buffer: wgpu::Buffer,
    done: oneshot::Receiver<MapResult>,
}

/// The queue of metrics in flight and the recycled staging buffers.
#[derive(Debug, Default)]
pub(crate) struct MetricsQueue {
    pending: VecDeque<Pending>,
    free: Vec<wgpu::Buffer>,
}

impl MetricsQueue {
    /// Records copies of `loss` and `correct` (one f32 each, at `offset` 0 of their
    /// buffers) into a staging buffer that maps when `encoder` is submitted.
    pub fn record(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        loss: &crate::nn::Tensor,
        correct: &crate::nn::Tensor,
        step: u64,
        batch_size: usize,
    ) {
        let buffer = self.free.pop().unwrap_or_else(|| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("coptim batch metrics"),
                size: METRICS_BYTES,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        encoder.copy_buffer_to_buffer(loss.buffer(), loss.offset(), &buffer, 0, 4);
        encoder.copy_buffer_to_buffer(correct.buffer(), correct.offset(), &buffer, 4, 4);
        let (tx, done) = oneshot::channel();
        encoder.map_buffer_on_submit(&buffer, wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.pending.push_back(Pending {
            step,
            batch_size,
            buffer,
            done,
        });
    }

    /// Every metric whose readback has completed, oldest first, without waiting.
    pub fn poll(&mut self, ctx: &GpuContext) -> Result<Vec<BatchMetrics>> {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = ctx.device().poll(wgpu::PollType::Poll);
        ctx.check_lost()?;
        let mut out = Vec::new();
        while let Some(front) = self.pending.front_mut() {
            match front.done.try_recv() {
                Ok(Some(result)) => {
                    let p = self.pending.pop_front().expect("front exists");
                    out.push(self.finish(p, result)?);
                }
                Ok(None) => break,
                Err(_) => {
                    self.pending.pop_front();
                    return Err(Error::Readback("a metrics mapping was dropped".into()));
                }
            }
        }
        Ok(out)
    }

    /// The oldest metric in flight, waiting for it (natively by polling the device, on
    /// the web by yielding to the event loop). Fails if nothing was recorded, or
    /// (natively) if its encoder was never submitted.
    pub async fn next(&mut self, ctx: &GpuContext) -> Result<BatchMetrics> {
        let mut p = self
            .pending
            .pop_front()
            .ok_or_else(|| Error::Readback("no batch metrics were recorded".into()))?;
        #[cfg(not(target_arch = "wasm32"))]
        let result = {
            ctx.device()
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Readback(e.to_string()))?;
            match p.done.try_recv() {
                Ok(Some(result)) => result,
                Ok(None) => {
                    // Still pending: a later call may succeed once it is submitted.
                    self.pending.push_front(p);
                    return Err(Error::Readback(
                        "the encoder holding these metrics was not submitted".into(),
                    ));
                }
                Err(_) => return Err(Error::Readback("a metrics mapping was dropped".into())),
            }
        };
        #[cfg(target_arch = "wasm32")]
        let result = (&mut p.done)
            .await
            .map_err(|_| Error::Readback("a metrics mapping was dropped".into()))?;
        ctx.check_lost()?;
        self.finish(p, result)
    }

    fn finish(&mut self, p: Pending, result: MapResult) -> Result<BatchMetrics> {
        result.map_err(|e| Error::Readback(e.to_string()))?;
        let values: [f32; 2] = {
            let view = p
                .buffer
                .get_mapped_range(..)
                .map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::pod_read_unaligned(&view[..METRICS_BYTES as usize])
        };
        p.buffer.unmap();
        self.free.push(p.buffer);
        Ok(BatchMetrics {
            step: p.step,
            loss: values[0],
            correct: values[1] as u32,
            batch_size: p.batch_size,
        })
    }
}
