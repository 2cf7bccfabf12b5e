//! Persistent upload staging: data that a command encoder copies into GPU buffers in
//! encoder order, without allocating a buffer per upload.
//!
//! Every staging buffer is mapped for writing while it is free. An upload fills a free
//! buffer that is large enough, unmaps it, records the copy, and asks wgpu to map it
//! again once that encoder's submission has run (`map_buffer_on_submit`). When none is
//! free the ring grows by one buffer, so an upload never waits and never overwrites
//! data a recorded copy still needs. (An encoder dropped without being submitted keeps
//! its buffers out of the ring.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::context::GpuContext;

/// Smallest staging buffer (bytes); uploads round up to a multiple of it.
const MIN_SLOT_BYTES: u64 = 256;

#[derive(Debug)]
struct Slot {
    buffer: wgpu::Buffer,
    /// Mapped for writing and not used by any recorded copy.
    free: Arc<AtomicBool>,
}

/// A growing ring of write-mapped staging buffers.
#[derive(Debug)]
pub struct UploadRing {
    label: &'static str,
    slots: Vec<Slot>,
}

impl UploadRing {
    /// An empty ring; its buffers are labelled `label`.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            slots: Vec::new(),
        }
    }

    /// Staging buffers allocated so far.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no staging buffer has been allocated yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Records a copy of `bytes` (a multiple of 4 long) to `offset` of `target` into
    /// `encoder`: the data lands when the encoder runs, in order with its other work.
    pub fn record_write(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::Buffer,
        offset: u64,
        bytes: &[u8],
    ) {
        let size = bytes.len() as u64;
        if size == 0 {
            return;
        }
        let slot = self.free_slot(ctx, size);
        slot.buffer
            .get_mapped_range_mut(..size)
            .expect("a free upload slot is mapped for writing")
            .copy_from_slice(bytes);
        slot.buffer.unmap();
        slot.free.store(false, Ordering::Release);
        encoder.copy_buffer_to_buffer(&slot.buffer, 0, target, offset, size);
        let free = slot.free.clone();
        encoder.map_buffer_on_submit(&slot.buffer, wgpu::MapMode::Write, .., move |r| {
            free.store(r.is_ok(), Ordering::Release);
        });
    }

    /// A free slot of at least `size` bytes, allocating one if none is free.
    fn free_slot(&mut self, ctx: &GpuContext, size: u64) -> &Slot {
        let fits = |s: &Slot| s.free.load(Ordering::Acquire) && s.buffer.size() >= size;
        let found = self.slots.iter().position(fits);
        // Completed submissions return their buffers when the device is polled.
        #[cfg(not(target_arch = "wasm32"))]
        let found = found.or_else(|| {
            let _ = ctx.device().poll(wgpu::PollType::Poll);
            self.slots.iter().position(fits)
        });
        let index = found.unwrap_or_else(|| {
            self.slots.push(Slot {
                buffer: ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some(self.label),
                    size: size.next_multiple_of(MIN_SLOT_BYTES),
                    usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: true,
                }),
                free: Arc::new(AtomicBool::new(true)),
            });
            self.slots.len() - 1
        });
        &self.slots[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two uploads recorded into one encoder before any submit use two buffers, and
    /// both land; after the submit completes, the buffers are reused.
    #[test]
    fn uploads_land_in_encoder_order_and_buffers_are_reused() {
        let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
        let target = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 8,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut ring = UploadRing::new("test upload");
        for round in 0..3u32 {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            ring.record_write(&ctx, &mut encoder, &target, 0, bytemuck::bytes_of(&round));
            ring.record_write(
                &ctx,
                &mut encoder,
                &target,
                4,
                bytemuck::bytes_of(&(round + 10)),
            );
            ctx.queue().submit([encoder.finish()]);
            ctx.wait_idle().unwrap();
            let bytes = pollster::block_on(crate::arena::read_buffer(&ctx, &target, 0, 8)).unwrap();
            assert_eq!(bytemuck::cast_slice::<u8, u32>(&bytes), [round, round + 10]);
        }
        assert_eq!(ring.len(), 2);
    }
}
