//! Reading one GPU buffer range back to the CPU, natively and on the web: the one
//! read helper, built on the same [`ReadbackQueue`] as the per-step records.

use crate::arena::readback::{ReadbackQueue, Source};
use crate::context::GpuContext;
use crate::error::Result;

/// Copies `size` bytes at `offset` of `buffer` (which needs `COPY_SRC`) into a staging
/// buffer, submits, and awaits the mapping. On native targets the device is polled;
/// on the web the browser's event loop completes the mapping. The result is `size`
/// rounded up to a multiple of 4 bytes long.
pub async fn read_buffer(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> Result<Vec<u8>> {
    ctx.check_lost()?;
    let size = size.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
    let mut queue = ReadbackQueue::new("coptim readback");
    let mut encoder = ctx
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("coptim readback"),
        });
    let source = Source {
        buffer,
        offset,
        size,
    };
    queue.record(ctx, &mut encoder, &[source], ());
    ctx.queue().submit([encoder.finish()]);
    let ((), bytes) = queue.next(ctx).await?;
    Ok(bytes)
}
