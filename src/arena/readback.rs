//! Non-blocking readback in recording order: copies of GPU data recorded into a
//! command encoder, mapped when the encoder is submitted (`map_buffer_on_submit`),
//! and handed back oldest first.
//!
//! Staging buffers are recycled; when none is free the queue allocates another, so a
//! record is never dropped and recording never waits for the GPU. Callers that stop
//! reading let the queue grow by one small buffer per record.

use std::collections::VecDeque;

use futures_channel::oneshot;

use crate::context::GpuContext;
use crate::error::{Error, Result};

type MapResult = std::result::Result<(), wgpu::BufferAsyncError>;

/// A byte range of a GPU buffer (which needs `COPY_SRC`) to read back.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// First byte (a multiple of 4).
    pub offset: u64,
    /// Bytes (a multiple of 4).
    pub size: u64,
}

#[derive(Debug)]
struct Pending<M> {
    meta: M,
    buffer: wgpu::Buffer,
    size: u64,
    done: oneshot::Receiver<MapResult>,
}

/// Records in flight, each with the caller's metadata `M`, and the recycled staging
/// buffers.
#[derive(Debug)]
pub struct ReadbackQueue<M> {
    label: &'static str,
    pending: VecDeque<Pending<M>>,
    free: Vec<wgpu::Buffer>,
}

impl<M> ReadbackQueue<M> {
    /// An empty queue; its staging buffers are labelled `label`.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            pending: VecDeque::new(),
            free: Vec::new(),
        }
    }

    /// Records copies of `sources`, concatenated, into a staging buffer that maps
    /// when `encoder` is submitted.
    pub fn record(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        sources: &[Source<'_>],
        meta: M,
    ) {
        let size: u64 = sources.iter().map(|s| s.size).sum();
        let buffer = match self.free.iter().position(|b| b.size() >= size) {
            Some(i) => self.free.swap_remove(i),
            None => ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(self.label),
                size: size.max(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let mut at = 0;
        for s in sources {
            encoder.copy_buffer_to_buffer(s.buffer, s.offset, &buffer, at, s.size);
            at += s.size;
        }
        let (tx, done) = oneshot::channel();
        encoder.map_buffer_on_submit(&buffer, wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.pending.push_back(Pending {
            meta,
            buffer,
            size,
            done,
        });
    }

    /// Records recorded but not yet returned.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Staging buffers allocated so far (in flight and free for reuse).
    pub fn staging_buffers(&self) -> usize {
        self.pending.len() + self.free.len()
    }

    /// Every record whose readback has completed, oldest first, without waiting.
    pub fn poll(&mut self, ctx: &GpuContext) -> Result<Vec<(M, Vec<u8>)>> {
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
                    return Err(Error::Readback("a readback mapping was dropped".into()));
                }
            }
        }
        Ok(out)
    }

    /// The oldest record not yet returned, waiting for it (natively by polling the
    /// device, on the web by yielding to the event loop). Fails if nothing was
    /// recorded, or (natively) if its encoder was never submitted; the record then
    /// stays queued.
    pub async fn next(&mut self, ctx: &GpuContext) -> Result<(M, Vec<u8>)> {
        let mut p = self
            .pending
            .pop_front()
            .ok_or_else(|| Error::Readback("nothing was recorded for readback".into()))?;
        #[cfg(not(target_arch = "wasm32"))]
        let result = match wait_for_callback(ctx, &mut p.done) {
            Ok(Some(result)) => result,
            Ok(None) => {
                self.pending.push_front(p);
                return Err(Error::Readback(
                    "the encoder holding this readback was not submitted".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        #[cfg(target_arch = "wasm32")]
        let result = (&mut p.done)
            .await
            .map_err(|_| Error::Readback("a readback mapping was dropped".into()))?;
        ctx.check_lost()?;
        self.finish(p, result)
    }

    fn finish(&mut self, p: Pending<M>, result: MapResult) -> Result<(M, Vec<u8>)> {
        result.map_err(|e| Error::Readback(e.to_string()))?;
        let bytes = p
            .buffer
            .get_mapped_range(..p.size.max(4))
            .map_err(|e| Error::Readback(e.to_string()))?[..p.size as usize]
            .to_vec();
        p.buffer.unmap();
        self.free.push(p.buffer);
        Ok((p.meta, bytes))
    }
}

/// Waits natively for a mapping callback. A callback can land after the poll that
/// drained the queue returns (another thread may be running it), so an idle queue
/// is only taken to mean "never submitted" once polls have found nothing for a
/// second.
#[cfg(not(target_arch = "wasm32"))]
fn wait_for_callback(
    ctx: &GpuContext,
    done: &mut oneshot::Receiver<MapResult>,
) -> Result<Option<MapResult>> {
    const GRACE: std::time::Duration = std::time::Duration::from_secs(1);
    let start = std::time::Instant::now();
    loop {
        ctx.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Readback(e.to_string()))?;
        match done.try_recv() {
            Ok(Some(result)) => return Ok(Some(result)),
            Ok(None) if start.elapsed() < GRACE => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Ok(None) => return Ok(None),
            Err(_) => return Err(Error::Readback("a readback mapping was dropped".into())),
        }
    }
}
