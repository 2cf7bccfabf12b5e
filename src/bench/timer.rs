//! Timing GPU work: timestamp queries where the device has them, otherwise
//! submit-and-wait wall time.

use std::time::Instant;

use serde::Serialize;

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// How a [`Timer`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingMethod {
    /// GPU timestamps written into the command stream before and after the work
    /// (`Features::TIMESTAMP_QUERY_INSIDE_ENCODERS`): device time only.
    Timestamps,
    /// Wall time from submit to the end of a blocking wait, one sample per submit:
    /// includes submission and driver overhead (an upper bound on device time).
    WallClock,
}

/// Records one unit of work into an encoder (see [`Timer::time_interleaved`]).
pub type RecordFn<'a> = dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()> + 'a;

/// Samples per timestamp batch (two queries each).
const BATCH: u32 = 64;

/// Times recorded GPU work, sample by sample.
#[derive(Debug)]
pub struct Timer {
    ctx: GpuContext,
    method: TimingMethod,
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
}

impl Timer {
    /// A timer using timestamps when the context has them and `allow_timestamps` is
    /// set, wall time otherwise.
    pub fn new(ctx: &GpuContext, allow_timestamps: bool) -> Self {
        let use_ts = allow_timestamps && ctx.capabilities().timestamps;
        let queries = use_ts.then(|| {
            let set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("coptim bench timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * BATCH,
            });
            let resolve = ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("coptim bench timestamp resolve"),
                size: 2 * BATCH as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, resolve)
        });
        Self {
            ctx: ctx.clone(),
            method: if use_ts {
                TimingMethod::Timestamps
            } else {
                TimingMethod::WallClock
            },
            queries,
        }
    }

    /// The method in use.
    pub fn method(&self) -> TimingMethod {
        self.method
    }

    /// Times several kinds of work side by side: each round runs every entry of
    /// `work` once, in order, so that a slow moment of a shared machine hits them
    /// alike. The first `warmup` rounds are submitted and waited for but not timed;
    /// then `samples` rounds are timed. Returns, per entry, each sample's duration in
    /// milliseconds. Each closure must record exactly one unit of work (e.g. one
    /// optimizer step) into the encoder it is given.
    pub fn time_interleaved(
        &mut self,
        warmup: u32,
        samples: u32,
        work: &mut [&mut RecordFn<'_>],
    ) -> Result<Vec<Vec<f64>>> {
        for _ in 0..warmup {
            for record in work.iter_mut() {
                let mut enc = self.encoder();
                record(&mut enc)?;
                self.ctx.queue().submit([enc.finish()]);
                self.ctx.wait_idle()?;
            }
        }
        let kinds = work.len() as u32;
        let mut out = vec![Vec::with_capacity(samples as usize); work.len()];
        match &self.queries {
            None => {
                for _ in 0..samples {
                    for (k, record) in work.iter_mut().enumerate() {
                        let mut enc = self.encoder();
                        record(&mut enc)?;
                        let t0 = Instant::now();
                        self.ctx.queue().submit([enc.finish()]);
                        self.ctx.wait_idle()?;
                        out[k].push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            Some((set, resolve)) => {
                let period_ns = f64::from(self.ctx.queue().get_timestamp_period());
                let rounds_per_batch = (BATCH / kinds.max(1)).max(1);
                let mut left = samples;
                while left > 0 {
                    let rounds = left.min(rounds_per_batch);
                    let mut q = 0;
                    for _ in 0..rounds {
                        for record in work.iter_mut() {
                            let mut enc = self.encoder();
                            enc.write_timestamp(set, q);
                            record(&mut enc)?;
                            enc.write_timestamp(set, q + 1);
                            self.ctx.queue().submit([enc.finish()]);
                            q += 2;
                        }
                    }
                    let mut enc = self.encoder();
                    enc.resolve_query_set(set, 0..q, resolve, 0);
                    self.ctx.queue().submit([enc.finish()]);
                    let bytes = pollster::block_on(crate::arena::read_buffer(
                        &self.ctx,
                        resolve,
                        0,
                        u64::from(q) * 8,
                    ))?;
                    let ticks: &[u64] = bytemuck::cast_slice(&bytes);
                    for (i, pair) in ticks.chunks_exact(2).enumerate() {
                        if pair[1] < pair[0] {
                            return Err(Error::Gpu("timestamp queries went backwards".to_string()));
                        }
                        out[i % work.len()].push((pair[1] - pair[0]) as f64 * period_ns * 1e-6);
                    }
                    left -= rounds;
                }
            }
        }
        Ok(out)
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("coptim bench"),
            })
    }
}

/// The median of `samples` (0 for none).
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
