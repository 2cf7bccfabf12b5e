//! Two runs trained in lockstep: the same model, initial weights and batches, two
//! optimizers (the base one and its cautious variant). Built on [`crate::model`].

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::data::{Batcher, DatasetSplit};
use crate::error::{Error, Result};
use crate::model::{Batch, Mlp, Model, Vit};
use crate::nn::Activation;
use crate::optim::{Caution, OptimizerConfig};
use crate::{GpuContext, Optimizer};

/// Most steps one [`Pair::train`] call may take.
pub const MAX_CHUNK: usize = 64;
/// Test images per evaluation batch.
const EVAL_BATCH: usize = 500;

/// Which optimizers the two runs use: the base one and its cautious variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairKind {
    /// AdamW vs C-AdamW (timm `adamw` / `cadamw`), weight decay 0.01.
    Adamw,
    /// Lion vs C-Lion (timm `lion` / `clion`), weight decay 0.01.
    Lion,
    /// SGD with Nesterov momentum 0.9 vs C-SGD (timm `sgdw` / `csgdw`).
    Sgd,
}

/// The model both runs train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// 784-128-10 with ReLU.
    Mlp,
    /// A tiny ViT: patch 7, width 32, 2 blocks of 2 heads, MLP ratio 2.
    Vit,
}

/// What the page asks for, as JSON: `{ pair, model, lr, batchSize, seed }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairOptions {
    /// The optimizer pair.
    pub pair: PairKind,
    /// The model.
    pub model: ModelKind,
    /// Learning rate of both optimizers.
    pub lr: f64,
    /// Training batch size.
    pub batch_size: usize,
    /// Seed of the initial weights and of the batch order.
    pub seed: u64,
}

impl PairOptions {
    /// The two runs' names and optimizer configurations, after checking the options.
    fn configs(&self) -> Result<[(String, OptimizerConfig); 2]> {
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
        let (name, base) = match self.pair {
            PairKind::Adamw => (
                "AdamW",
                OptimizerConfig::adamw(self.lr).with_weight_decay(0.01),
            ),
            PairKind::Lion => (
                "Lion",
                OptimizerConfig::lion(self.lr).with_weight_decay(0.01),
            ),
            PairKind::Sgd => ("SGD", OptimizerConfig::sgd(self.lr, true)),
        };
        let cautious = base.clone().with_caution(Caution::hard());
        Ok([(name.to_string(), base), (format!("C-{name}"), cautious)])
    }

    /// A fresh model of the requested kind, initialized from the seed.
    fn model(&self, ctx: &GpuContext) -> Result<Model> {
        match self.model {
            ModelKind::Mlp => {
                let mlp = Mlp {
                    hidden: vec![128],
                    activation: Activation::Relu,
                    ..Mlp::default()
                };
                Model::new(ctx, mlp, self.seed)
            }
            ModelKind::Vit => {
                let vit = Vit {
                    dim: 32,
                    depth: 2,
                    heads: 2,
                    ..Vit::default()
                };
                Model::new(ctx, vit, self.seed)
            }
        }
    }
}

/// One run: a model and its optimizer.
struct Run {
    name: String,
    model: Model,
    optimizer: Optimizer,
    caution: bool,
    kept: Option<f64>,
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

/// Two runs stepped in lockstep on the same batches.
pub struct Pair {
    data: Rc<DatasetSplit>,
    test_labels: Vec<u32>,
    batcher: Batcher,
    epoch: u64,
    order: Vec<usize>,
    cursor: usize,
    runs: [Run; 2],
    images: Vec<f32>,
    labels: Vec<u32>,
}

impl Pair {
    /// Builds both runs with identical initial weights.
    pub fn new(ctx: &GpuContext, data: Rc<DatasetSplit>, options: &PairOptions) -> Result<Self> {
        let [a, b] = options.configs()?.map(|(name, config)| -> Result<Run> {
            let model = options.model(ctx)?;
            let caution = config.caution.is_on();
            Ok(Run {
                name,
                optimizer: Optimizer::new(ctx, model.store(), config)?,
                model,
                caution,
                kept: None,
            })
        });
        let runs = [a?, b?];
        let batcher =
            Batcher::new(data.train.len(), options.batch_size, options.seed).with_drop_last(true);
        if batcher.batches_per_epoch() == 0 {
            return Err(Error::InvalidConfig(format!(
                "the batch size {} exceeds the {} training images",
                options.batch_size,
                data.train.len()
            )));
        }
        Ok(Self {
            test_labels: data.test.labels().iter().map(|&l| l.into()).collect(),
            order: batcher.epoch_order(0),
            data,
            batcher,
            epoch: 0,
            cursor: 0,
            runs,
            images: Vec::new(),
            labels: Vec::new(),
        })
    }

    /// The optimizers' display names, e.g. `["AdamW", "C-AdamW"]`.
    pub fn names(&self) -> [String; 2] {
        [self.runs[0].name.clone(), self.runs[1].name.clone()]
    }

    /// Trains both runs for `steps` steps on the same next batches (one submission),
    /// then waits for every step's loss.
    pub async fn train(&mut self, steps: usize) -> Result<TrainReport> {
        if !(1..=MAX_CHUNK).contains(&steps) {
            return Err(Error::InvalidConfig(format!(
                "between 1 and {MAX_CHUNK} steps per call, got {steps}"
            )));
        }
        let ctx = self.runs[0].model.context().clone();
        let mut encoder = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("coptim demo train"),
            });
        for _ in 0..steps {
            let batch = self.batcher.batch_size();
            if self.cursor + batch > self.order.len() {
                self.epoch += 1;
                self.order = self.batcher.epoch_order(self.epoch);
                self.cursor = 0;
            }
            let indices = &self.order[self.cursor..self.cursor + batch];
            self.cursor += batch;
            self.data
                .train
                .batch_into(indices, &mut self.images, &mut self.labels);
            for run in &mut self.runs {
                let batch = Batch {
                    images: &self.images,
                    labels: &self.labels,
                };
                run.model.record_forward_backward(&mut encoder, batch)?;
                run.optimizer.record_step(&mut encoder)?;
            }
        }
        ctx.queue().submit([encoder.finish()]);

        let mut loss = [Vec::with_capacity(steps), Vec::with_capacity(steps)];
        for (run, losses) in self.runs.iter_mut().zip(&mut loss) {
            for _ in 0..steps {
                losses.push(run.model.next_metrics().await?.loss);
            }
            if let Some(stats) = run.optimizer.latest_stats()
                && run.caution
            {
                run.kept = Some(stats.kept_fraction());
            }
        }
        Ok(TrainReport {
            steps,
            loss,
            kept: [self.runs[0].kept, self.runs[1].kept],
        })
    }

    /// Test accuracy of both models over the whole test set.
    pub async fn evaluate(&mut self) -> Result<[f64; 2]> {
        let mut accuracy = [0.0; 2];
        for (run, acc) in self.runs.iter_mut().zip(&mut accuracy) {
            let eval = run
                .model
                .evaluate(self.data.test.images(), &self.test_labels, EVAL_BATCH)
                .await?;
            *acc = eval.accuracy();
        }
        Ok(accuracy)
    }

    /// Class probabilities of one image by both models: 10 per run, base run first.
    pub async fn predict(&mut self, pixels: &[f32]) -> Result<Vec<f32>> {
        let mut probabilities = Vec::new();
        for run in &mut self.runs {
            probabilities.extend(run.model.predict_probabilities(pixels, 1).await?);
        }
        Ok(probabilities)
    }
}
