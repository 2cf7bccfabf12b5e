//! Reading GPU buffers back to the CPU, natively and on the web.

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// Copies `size` bytes at `offset` of `buffer` (which needs `COPY_SRC`) into a staging
/// buffer, submits, and awaits the mapping. On native targets the device is polled;
/// on the web the browser's event loop completes the mapping.
pub async fn read_buffer(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> Result<Vec<u8>> {
    ctx.check_lost()?;
    let size = size.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
    let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("coptim readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("coptim readback"),
        });
    encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
    ctx.queue().submit([encoder.finish()]);
    map_read(ctx, &staging).await?;
    let bytes = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Readback(e.to_string()))?
        .to_vec();
    staging.unmap();
    Ok(bytes)
}

/// Maps a `MAP_READ` buffer whose copy has been submitted, and waits for it.
pub(crate) async fn map_read(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<()> {
    let (tx, rx) = futures_channel::oneshot::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Readback(e.to_string()))?;
    let result = rx
        .await
        .map_err(|_| Error::Readback("the mapping callback was dropped".into()))?;
    ctx.check_lost()?;
    result.map_err(|e| Error::Readback(e.to_string()))
}
