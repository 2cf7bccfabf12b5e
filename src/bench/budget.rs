//! The memory a benchmark configuration needs, checked against what the machine
//! has before anything is allocated (a typo such as `--params 4194304G` must fail
//! at once, not hang or exhaust memory).

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// Device bytes per parameter besides the optimizer state: parameters and gradients
/// (f32, 8 B) and the copy kernel's source and destination (3.5 f32 each, 28 B).
const DEVICE_BYTES_PER_PARAM: u64 = 8 + 28;

/// Host bytes per parameter: the parameter and gradient values uploaded by the fill
/// (f32, 8 B; the single-tensor layout stages the whole model at once).
const HOST_BYTES_PER_PARAM: u64 = 8;

/// Bytes one run at `params` parameters needs: `(device, host)`, with
/// `state_bytes_per_param` the state of every optimizer alive at once. `None` when
/// the count overflows `u64`.
pub fn bytes_needed(params: u64, state_bytes_per_param: u64) -> Option<(u64, u64)> {
    let device = DEVICE_BYTES_PER_PARAM
        .checked_add(state_bytes_per_param)?
        .checked_mul(params)?;
    Some((device, HOST_BYTES_PER_PARAM.checked_mul(params)?))
}

/// The memory the operating system can still give this process (`MemAvailable` of
/// `/proc/meminfo`), where it says.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Fails with [`Error::LimitExceeded`] when a run at `params` parameters cannot fit:
/// its size overflows, or it needs more than the available memory (the host's
/// share always; the device's share too on a CPU adapter, whose memory is the
/// host's). Discrete GPUs do not report their free memory through WebGPU, so their
/// own share is left to the allocator.
pub fn check_fits(ctx: &GpuContext, params: u64, state_bytes_per_param: u64) -> Result<()> {
    let what = format!("a benchmark of {params} parameters");
    let Some((device, host)) = bytes_needed(params, state_bytes_per_param) else {
        return Err(Error::LimitExceeded {
            what,
            needed: u64::MAX,
            allowed: u64::MAX,
        });
    };
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let shares_host = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let needed = if shares_host {
        device.saturating_add(host)
    } else {
        host
    };
    if needed > available {
        return Err(Error::LimitExceeded {
            what: format!("{what} (bytes of available memory)"),
            needed,
            allowed: available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_every_buffer_and_overflow_is_none() {
        assert_eq!(bytes_needed(1 << 20, 16), Some((52 << 20, 8 << 20)));
        assert_eq!(bytes_needed(u64::MAX / 8, 16), None);
    }
}
