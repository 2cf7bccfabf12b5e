//! [`TrainOptimizer`]: any of coptim's three optimizer engines behind one interface
//! (candle-nn's `Optimizer` trait is the model: record a step, set the rate, save and
//! restore the state), each step leaving the same readback record ([`StepStats`]).

use crate::arena::ParamSet;
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::adafactor::AdafactorOptimizer;
use crate::optim::adafactor_reference::AdafactorRule;
use crate::optim::engine_config::EngineConfig;
use crate::optim::inputs::StepInputs;
use crate::optim::muon::{MuonOptimizer, NsPrecision, muon_matrix};
use crate::optim::runtime::Optimizer;
use crate::optim::schedule::LrSchedule;
use crate::optim::stats::{KeptPart, StatsQueue, StatusPart, StepStats};

/// An optimizer of any engine, stepping every tensor of a [`ParamSet`].
#[derive(Debug)]
pub enum TrainOptimizer {
    /// A member of the element-wise registry.
    Elementwise(Box<Optimizer>),
    /// Muon or C-Muon.
    Muon(Box<Scheduled<MuonOptimizer>>),
    /// The Adafactor family.
    Adafactor(Box<Scheduled<AdafactorOptimizer>>),
}

/// Muon or an Adafactor with what the element-wise [`Optimizer`] keeps itself: the
/// base learning rate, the schedule, the steps recorded and the per-step records.
#[derive(Debug)]
pub struct Scheduled<E> {
    engine: E,
    ctx: GpuContext,
    lr: f64,
    schedule: LrSchedule,
    scheduled: u64,
    stats: StatsQueue,
}

impl<E> Scheduled<E> {
    fn new(ctx: &GpuContext, engine: E, lr: f64, schedule: LrSchedule, stats: StatsQueue) -> Self {
        Self {
            engine,
            ctx: ctx.clone(),
            lr,
            schedule,
            scheduled: 0,
            stats,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The rate of a step with `inputs`, recorded next.
    fn next_lr(&self, inputs: &StepInputs<'_>) -> Result<f64> {
        inputs.single_lr(&self.schedule, self.lr, self.scheduled + 1)
    }

    /// Counts a recorded step and records its readback record at rate `lr`.
    fn finish_step(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &StepInputs<'_>,
        lr: f64,
    ) {
        self.scheduled += 1;
        self.stats
            .record(&self.ctx, encoder, inputs, self.scheduled, lr);
    }
}

impl TrainOptimizer {
    /// The optimizer `config` describes over `params` (Muon's products in f16 where
    /// the adapter has it and is not a CPU, f32 otherwise).
    pub fn new(
        ctx: &GpuContext,
        params: impl Into<ParamSet>,
        config: &EngineConfig,
    ) -> Result<Self> {
        let params: ParamSet = params.into();
        config.validate()?;
        let numel: Vec<u64> = params.tensors().iter().map(|t| t.len).collect();
        match config {
            EngineConfig::Elementwise(c) => {
                Optimizer::new(ctx, params, c.clone()).map(|o| Self::Elementwise(Box::new(o)))
            }
            EngineConfig::Muon(m) => {
                let mut muon = MuonOptimizer::new(
                    ctx,
                    params,
                    m.muon,
                    m.caution,
                    m.weight_decay,
                    NsPrecision::Auto,
                )?;
                if let Some(c) = m.clip_grad_norm {
                    muon = muon.with_clip_grad_norm(c)?;
                }
                let status = Some(StatusPart::Own(muon.status().clone()));
                let stats =
                    StatsQueue::with_parts(status, muon_parts(&muon), numel, m.caution.is_on());
                Ok(Self::Muon(Box::new(Scheduled::new(
                    ctx, muon, m.lr, m.schedule, stats,
                ))))
            }
            EngineConfig::Adafactor(a) => {
                let mut ada = AdafactorOptimizer::new(ctx, params, a.rule, a.caution)?;
                if let Some(c) = a.clip_grad_norm {
                    ada = ada.with_clip_grad_norm(c)?;
                }
                let (buffer, ranges) = ada.kept_chunks();
                let part = KeptPart::Chunks {
                    buffer: buffer.clone(),
                    ranges,
                };
                let status = Some(StatusPart::Own(ada.status().clone()));
                let stats = StatsQueue::with_parts(status, vec![part], numel, a.caution.is_on());
                // timm's relative step (no external rate) has no base rate to scale.
                let lr = a.rule.lr().unwrap_or(0.0);
                Ok(Self::Adafactor(Box::new(Scheduled::new(
                    ctx, ada, lr, a.schedule, stats,
                ))))
            }
        }
    }

    /// Records one step into `encoder` with the step's `inputs` (learning rate or the
    /// schedule, the loss and values to record) and its readback record; nothing is
    /// submitted. Muon and Adafactor have only the default group (0). An Adafactor on
    /// timm's relative step ignores the rate and records the relative step's (of the
    /// steps recorded: the GPU's, from the completed steps, differs after a skipped
    /// step).
    pub fn record_step(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &StepInputs<'_>,
    ) -> Result<()> {
        match self {
            Self::Elementwise(o) => o.record_step(encoder, inputs),
            Self::Muon(s) => {
                let lr = s.next_lr(inputs)?;
                s.engine.record_step(encoder, lr)?;
                s.finish_step(encoder, inputs, lr);
                Ok(())
            }
            Self::Adafactor(s) => {
                let lr = s.next_lr(inputs)?;
                let (rule, _) = s.engine.config();
                let used = match rule {
                    AdafactorRule::Timm(a) if a.lr.is_none() => {
                        s.engine.record_step_at(encoder, None)?;
                        a.base_lr(s.engine.steps()).0
                    }
                    _ => {
                        s.engine.record_step_at(encoder, Some(lr))?;
                        lr
                    }
                };
                s.finish_step(encoder, inputs, used);
                Ok(())
            }
        }
    }

    /// The record of every step whose readback has completed since the last call, in
    /// step order, without waiting (see [`Optimizer::take_stats`]). Muon's and
    /// Adafactor's records carry the global gradient norm of every step, and skip a
    /// step whose gradients hold a NaN or an infinity as the element-wise engine.
    pub fn take_stats(&mut self) -> Result<Vec<StepStats>> {
        match self {
            Self::Elementwise(o) => o.take_stats(),
            Self::Muon(s) => s.stats.poll(&s.ctx),
            Self::Adafactor(s) => s.stats.poll(&s.ctx),
        }
    }

    /// Steps recorded whose records have not been returned yet.
    pub fn stats_in_flight(&self) -> usize {
        match self {
            Self::Elementwise(o) => o.stats_in_flight(),
            Self::Muon(s) => s.stats.in_flight(),
            Self::Adafactor(s) => s.stats.in_flight(),
        }
    }

    /// Staging buffers the per-step records use.
    pub fn record_buffers(&self) -> usize {
        match self {
            Self::Elementwise(o) => o.record_buffers(),
            Self::Muon(s) => s.stats.staging_buffers(),
            Self::Adafactor(s) => s.stats.staging_buffers(),
        }
    }

    /// Steps recorded so far (skipped ones included).
    pub fn scheduled_steps(&self) -> u64 {
        match self {
            Self::Elementwise(o) => o.scheduled_steps(),
            Self::Muon(s) => s.scheduled,
            Self::Adafactor(s) => s.scheduled,
        }
    }

    /// The base learning rate the schedule multiplies.
    pub fn learning_rate(&self) -> f64 {
        match self {
            Self::Elementwise(o) => o.learning_rate(),
            Self::Muon(s) => s.lr,
            Self::Adafactor(s) => s.lr,
        }
    }

    /// Sets the base learning rate for the steps recorded from now on. Fails,
    /// changing nothing, unless it is finite and non-negative.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        let base = match self {
            Self::Elementwise(o) => return o.set_learning_rate(lr),
            Self::Muon(s) => &mut s.lr,
            Self::Adafactor(s) => &mut s.lr,
        };
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::InvalidConfig(format!(
                "learning rate {lr} is not a finite non-negative number"
            )));
        }
        *base = lr;
        Ok(())
    }

    /// Serializes the state to safetensors bytes (waits for the GPU): the engine's
    /// own state file.
    pub async fn state_bytes(&self) -> Result<Vec<u8>> {
        match self {
            Self::Elementwise(o) => o.state_bytes().await,
            Self::Muon(s) => s.engine.state_bytes().await,
            Self::Adafactor(s) => s.engine.state_bytes().await,
        }
    }

    /// Restores state from [`TrainOptimizer::state_bytes`]; `source` names the file
    /// in errors. A file of another engine or configuration is rejected, changing
    /// nothing. The steps recorded come back from the file (Muon: from its fallback
    /// AdamW's, when it has one; see `TrainOptimizer::set_scheduled`).
    pub fn load_state_bytes(&mut self, bytes: &[u8], source: &str) -> Result<()> {
        match self {
            Self::Elementwise(o) => o.load_state_bytes(bytes, source),
            Self::Muon(s) => {
                s.engine.load_state_bytes(bytes, source)?;
                if let Some(f) = s.engine.fallback() {
                    s.scheduled = f.scheduled_steps();
                }
                Ok(())
            }
            Self::Adafactor(s) => {
                s.engine.load_state_bytes(bytes, source)?;
                s.scheduled = s.engine.steps() as u64;
                Ok(())
            }
        }
    }

    /// Sets the steps recorded (a restored run's), which drive the schedule.
    pub(crate) fn set_scheduled(&mut self, scheduled: u64) {
        match self {
            Self::Elementwise(o) => o.set_scheduled(scheduled),
            Self::Muon(s) => s.scheduled = scheduled,
            Self::Adafactor(s) => s.scheduled = scheduled,
        }
    }
}

/// Where a Muon step's kept counts are: the matrices' chunk partials, and the
/// fallback AdamW's tensor table for the other tensors.
fn muon_parts(muon: &MuonOptimizer) -> Vec<KeptPart> {
    let mut parts = Vec::new();
    if let Some((buffer, ranges)) = muon.kept_chunks().filter(|(_, r)| !r.is_empty()) {
        parts.push(KeptPart::Chunks {
            buffer: buffer.clone(),
            ranges,
        });
    }
    if let Some(fallback) = muon.fallback() {
        let tensors = muon
            .params()
            .tensors()
            .iter()
            .enumerate()
            .filter(|(_, t)| muon_matrix(&t.shape).is_none())
            .map(|(i, _)| i)
            .collect();
        parts.push(KeptPart::Table {
            buffer: fallback.tensor_table().clone(),
            tensors,
        });
    }
    parts
}
