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
use crate::optim::grad_norm::{GpuOwnStatus, STATUS_BYTES};
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
    /// Global gradient norm before clipping: the element-wise engine measures it when
    /// it clips (0 otherwise); Muon and the Adafactor family every step (their finite
    /// check reads every gradient anyway). NaN or infinite on a skipped step.
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

/// `(tensor, first chunk, chunks)` of each tensor whose kept count is the sum of
/// its chunks' counts (see [`KeptPart::Chunks`]).
pub(crate) type ChunkRanges = Vec<(usize, u64, u64)>;

/// Where one part of a record finds kept counts.
#[derive(Debug)]
pub(crate) enum KeptPart {
    /// An engine tensor table ([`GpuTensorEntry`] per tensor): entry `k`'s count is
    /// tensor `tensors[k]`'s.
    Table {
        buffer: wgpu::Buffer,
        tensors: Vec<usize>,
    },
    /// Per-chunk `(count, other)` u32 pairs from byte 0 of `buffer` (Muon's and
    /// Adafactor's partials, with feature `nn`): for each `(t, first chunk, chunks)` of `ranges`, tensor
    /// `t`'s count is the sum over its chunks.
    #[cfg_attr(not(feature = "nn"), allow(dead_code))]
    Chunks {
        buffer: wgpu::Buffer,
        ranges: ChunkRanges,
    },
}

/// Bytes of one chunk's `(count, other)` partial.
const CHUNK_BYTES: u64 = 8;

impl KeptPart {
    /// Bytes this part copies into a record.
    fn bytes(&self) -> u64 {
        match self {
            KeptPart::Table { tensors, .. } => {
                (tensors.len() * std::mem::size_of::<GpuTensorEntry>()) as u64
            }
            KeptPart::Chunks { ranges, .. } => {
                ranges.iter().map(|&(_, f, n)| f + n).max().unwrap_or(0) * CHUNK_BYTES
            }
        }
    }

    fn buffer(&self) -> &wgpu::Buffer {
        match self {
            KeptPart::Table { buffer, .. } | KeptPart::Chunks { buffer, .. } => buffer,
        }
    }

    /// Writes this part's counts, read from `bytes`, into `kept`.
    fn decode(&self, bytes: &[u8], kept: &mut [u64]) {
        match self {
            KeptPart::Table { tensors, .. } => {
                let entry_bytes = std::mem::size_of::<GpuTensorEntry>();
                for (chunk, &t) in bytes.chunks_exact(entry_bytes).zip(tensors) {
                    let e: GpuTensorEntry = bytemuck::pod_read_unaligned(chunk);
                    kept[t] = e.kept as u64;
                }
            }
            KeptPart::Chunks { ranges, .. } => {
                let words: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
                for &(t, first, n) in ranges {
                    let pairs = &words[2 * first as usize..2 * (first + n) as usize];
                    kept[t] = pairs.iter().step_by(2).map(|&c| c as u64).sum();
                }
            }
        }
    }
}

/// Where a record finds the step's status.
#[derive(Debug)]
pub(crate) enum StatusPart {
    /// The element-wise engine's [`GpuStatus`].
    Engine(wgpu::Buffer),
    /// Muon's or Adafactor's [`GpuOwnStatus`] (`shaders/lib/own_status.wgsl`; the
    /// training engine's records, with feature `nn`): the completed steps are the
    /// scheduled ones less those skipped since it was built.
    #[cfg_attr(not(feature = "nn"), allow(dead_code))]
    Own(wgpu::Buffer),
}

/// The step status a record decodes, whichever engine wrote it.
struct DecodedStatus {
    found_inf: bool,
    completed: u64,
    grad_norm: f32,
}

impl StatusPart {
    fn buffer(&self) -> &wgpu::Buffer {
        match self {
            StatusPart::Engine(b) | StatusPart::Own(b) => b,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            StatusPart::Engine(_) => std::mem::size_of::<GpuStatus>() as u64,
            StatusPart::Own(_) => STATUS_BYTES,
        }
    }

    /// The status in `bytes` of step `scheduled`.
    fn decode(&self, bytes: &[u8], scheduled: u64) -> DecodedStatus {
        match self {
            StatusPart::Engine(_) => {
                let s: GpuStatus = bytemuck::pod_read_unaligned(bytes);
                DecodedStatus {
                    found_inf: s.found_inf != 0,
                    completed: u64::from(s.step),
                    grad_norm: s.grad_norm,
                }
            }
            StatusPart::Own(_) => {
                let s: GpuOwnStatus = bytemuck::pod_read_unaligned(bytes);
                DecodedStatus {
                    found_inf: s.found_inf != 0,
                    completed: scheduled.saturating_sub(u64::from(s.skipped)),
                    grad_norm: s.grad_norm,
                }
            }
        }
    }
}

/// The per-step records in flight.
#[derive(Debug)]
pub(crate) struct StatsQueue {
    queue: ReadbackQueue<StepTag>,
    /// The engine's step status (`None`: steps are never skipped and complete when
    /// recorded).
    status: Option<StatusPart>,
    /// Where the kept counts of a masking step come from (empty without a mask).
    parts: Vec<KeptPart>,
    numel: Vec<u64>,
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
        let table = KeptPart::Table {
            buffer: table.clone(),
            tensors: (0..numel.len()).collect(),
        };
        Self::with_parts(
            Some(StatusPart::Engine(status.clone())),
            vec![table],
            numel,
            caution,
        )
    }

    /// Records of an optimizer with step status `status` (if any) whose kept counts
    /// come from `parts` when `caution` masks (else every coordinate is kept);
    /// tensors no part names count as kept whole.
    pub fn with_parts(
        status: Option<StatusPart>,
        parts: Vec<KeptPart>,
        numel: Vec<u64>,
        caution: bool,
    ) -> Self {
        Self {
            queue: ReadbackQueue::new("coptim step record"),
            status,
            parts: if caution { parts } else { Vec::new() },
            numel,
        }
    }

    /// Records the copies of one step's status, kept counts, loss and values.
    pub fn record(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &StepInputs<'_>,
        scheduled: u64,
        lr: f64,
    ) {
        let status = self.status.iter().map(|s| Source {
            buffer: s.buffer(),
            offset: 0,
            size: s.bytes(),
        });
        let parts = self.parts.iter().map(|p| Source {
            buffer: p.buffer(),
            offset: 0,
            size: p.bytes(),
        });
        let named = inputs
            .loss()
            .into_iter()
            .chain(inputs.values().iter().copied());
        let values = named.map(|(buffer, offset)| Source {
            buffer,
            offset,
            size: VALUE_BYTES,
        });
        let sources: Vec<Source<'_>> = status.chain(parts).chain(values).collect();
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
        let mut at = 0;
        let status = self.status.as_ref().map(|s| {
            at = s.bytes() as usize;
            s.decode(&bytes[..at], tag.scheduled)
        });
        let skipped = status.as_ref().is_some_and(|s| s.found_inf);
        let mut kept = self.numel.clone();
        for part in &self.parts {
            let end = at + part.bytes() as usize;
            part.decode(&bytes[at..end], &mut kept);
            at = end;
        }
        if skipped {
            // A skipped step kept nothing, whatever its count pass found.
            kept.iter_mut().for_each(|k| *k = 0);
        }
        // The loss (if named), then the caller's values: the rest of the record.
        let mut values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[at..]);
        let loss = tag.has_loss.then(|| values.remove(0));
        StepStats {
            scheduled_step: tag.scheduled,
            completed_steps: status.as_ref().map_or(tag.scheduled, |s| s.completed),
            skipped,
            grad_norm: status.as_ref().map_or(0.0, |s| s.grad_norm),
            lr: tag.lr,
            loss,
            values,
            kept,
            numel: self.numel.clone(),
        }
    }
}
