//! Two training sessions in lockstep: the same model, initial weights and batches,
//! two optimizers (the base one and its cautious twin). Built on
//! [`crate::train::Session`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::GpuContext;
use crate::data::DatasetSplit;
use crate::error::{Error, Result};
use crate::train::inputs::Standardize;
use crate::train::presets::ModelPreset;
use crate::train::{Lockstep, OptimizerKind, Session, TrainConfig};

/// Most steps one [`Pair::train`] call may take.
pub const MAX_CHUNK: usize = 64;
/// The demo trains until paused: a budget no visitor reaches.
const OPEN_ENDED_STEPS: u64 = 1 << 40;

/// What the page asks for, as JSON: `{ pair, model, lr, batchSize, seed }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairOptions {
    /// The optimizer pair, by its plain member's name (`adamw`, `lion`, `sgd`,
    /// `nadamw`, ...; see [`presets::pairs`](crate::train::presets::pairs)); the other
    /// run uses its cautious twin.
    pub pair: String,
    /// The model: a preset's name (see [`MODEL_PRESETS`](crate::train::presets::MODEL_PRESETS)).
    pub model: String,
    /// Learning rate of both optimizers (constant).
    pub lr: f64,
    /// Training batch size.
    pub batch_size: usize,
    /// Seed of the initial weights, the batch order and the augmentation.
    pub seed: u64,
}

impl PairOptions {
    /// The two runs' configurations: the model preset's defaults (weight decay,
    /// augmentation, standardized inputs) with the page's learning rate held
    /// constant, batch size and seed, and no end.
    fn configs(&self) -> Result<[TrainConfig; 2]> {
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "the learning rate must be in (0, 1], got {}",
                self.lr
            )));
        }
        if !(1..=512).contains(&self.batch_size) {
            return Err(Error::InvalidConfig(format!(
                "the batch size must be between 1 and 512, got {}",
                self.batch_size
            )));
        }
        let preset = ModelPreset::named(&self.model)?;
        let [base, cautious] = twins(&self.pair)?;
        let config = TrainConfig {
            lr: self.lr,
            batch_size: self.batch_size,
            seed: self.seed,
            steps: OPEN_ENDED_STEPS,
            warmup_steps: 0,
            lr_floor: 1.0,
            ..TrainConfig::from_preset(preset, base)
        };
        let cautious = TrainConfig {
            optimizer: cautious,
            ..config.clone()
        };
        Ok([config, cautious])
    }
}

/// The plain member of `name`'s algorithm and its cautious twin, or an error when
/// the name is unknown or has no cautious twin.
fn twins(name: &str) -> Result<[OptimizerKind; 2]> {
    let kind = OptimizerKind::from_name(name)?;
    kind.with_caution(false)
        .zip(kind.with_caution(true))
        .map(|(plain, cautious)| [plain, cautious])
        .ok_or_else(|| {
            Error::InvalidConfig(format!("optimizer `{name}` has no plain and cautious pair"))
        })
}

/// What a chunk of training steps reports.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    /// Steps taken by each run.
    pub steps: usize,
    /// The loss of every step, per run.
    pub loss: [Vec<f32>; 2],
    /// Each run's newest caution kept fraction (`None` without caution).
    pub kept: [Option<f64>; 2],
}

/// Two sessions stepped in lockstep on the same batches.
pub struct Pair {
    ctx: GpuContext,
    sessions: Lockstep,
    /// The standardization the sessions apply to their inputs, for the drawing pad.
    standardize: Standardize,
    kept: [Option<f64>; 2],
}

impl Pair {
    /// Builds both sessions: identical initial weights and batch streams.
    pub fn new(ctx: &GpuContext, data: Arc<DatasetSplit>, options: &PairOptions) -> Result<Self> {
        let [a, b] = options.configs()?;
        let standardize = match a.normalize {
            true => Standardize::of(&data.train),
            false => Standardize::IDENTITY,
        };
        Ok(Self {
            ctx: ctx.clone(),
            sessions: Lockstep::new(vec![
                Session::new(ctx, a, data.clone())?,
                Session::new(ctx, b, data)?,
            ])?,
            standardize,
            kept: [None, None],
        })
    }

    /// The optimizers' display names, e.g. `["AdamW", "C-AdamW"]`.
    pub fn names(&self) -> [String; 2] {
        [0, 1].map(|i| self.sessions.run(i).config().optimizer.label())
    }

    /// Submits `steps` training steps of both sessions, then waits for every step's
    /// metrics without blocking the browser.
    pub async fn train(&mut self, steps: usize) -> Result<TrainReport> {
        if !(1..=MAX_CHUNK).contains(&steps) {
            return Err(Error::InvalidConfig(format!(
                "between 1 and {MAX_CHUNK} steps per call, got {steps}"
            )));
        }
        for _ in 0..steps {
            self.sessions.step()?;
        }
        super::gpu_done(&self.ctx).await;
        let mut loss = [Vec::with_capacity(steps), Vec::with_capacity(steps)];
        let cautious = [0, 1].map(|i| self.sessions.run(i).config().optimizer.is_cautious());
        loop {
            for (run, metrics) in self.sessions.poll()?.into_iter().enumerate() {
                for m in metrics {
                    loss[run].push(m.loss);
                    if let Some(k) = m.kept_fraction.filter(|_| cautious[run]) {
                        self.kept[run] = Some(k);
                    }
                }
            }
            if self.sessions.in_flight() == 0 {
                break;
            }
            // The GPU is done; the mappings' callbacks come on a later turn.
            super::next_turn().await;
        }
        Ok(TrainReport {
            steps,
            loss,
            kept: self.kept,
        })
    }

    /// Test accuracy of both models over the whole test set.
    pub async fn evaluate(&mut self) -> Result<[f64; 2]> {
        let mut accuracy = [0.0; 2];
        for (run, acc) in accuracy.iter_mut().enumerate() {
            *acc = self.sessions.run_mut(run).evaluate().await?.accuracy;
        }
        Ok(accuracy)
    }

    /// Class probabilities of one image (pixels in `[0, 1]`) by both models: 10 per
    /// run, base run first.
    pub async fn predict(&mut self, pixels: &[f32]) -> Result<Vec<f32>> {
        let mut input = pixels.to_vec();
        self.standardize.apply(&mut input);
        let mut probabilities = Vec::new();
        for run in 0..self.sessions.len() {
            let (model, _) = self.sessions.run_mut(run).parts_mut();
            probabilities.extend(model.predict_probabilities(&input, 1).await?);
        }
        Ok(probabilities)
    }
}
