//! Two training sessions in lockstep: the same model, initial weights and batches,
//! two optimizers (the base one and its cautious twin). Built on
//! [`crate::train::Session`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::GpuContext;
use crate::data::DatasetSplit;
use crate::data::text::TextCorpus;
use crate::error::{Error, Result};
use crate::model::{Sampling, generate};
use crate::train::inputs::Standardize;
use crate::train::presets::ModelPreset;
use crate::train::reconstruction::Reconstructions;
use crate::train::{
    EvalMetrics, Lockstep, ModelSpec, OptimizerKind, Session, TrainConfig, TrainData,
};

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

/// What the page loaded for the runs to train on.
#[derive(Debug, Clone)]
pub enum PageData {
    /// MNIST-format digits, for the image models.
    Images(Arc<DatasetSplit>),
    /// A training and a validation text, each as `(text, name for errors)`, for the
    /// language model.
    Text {
        /// The training text and its name.
        train: (Arc<str>, Arc<str>),
        /// The validation text and its name.
        validation: (Arc<str>, Arc<str>),
    },
}

/// What the runs train on, and the standardization of the drawing pad's inputs: the
/// digits for an image model, the texts' corpus (windows of the model's context, the
/// texts' own characters as the vocabulary) for a language model. Fails when the
/// data does not fit the model.
fn train_data(config: &TrainConfig, data: PageData) -> Result<(TrainData, Standardize)> {
    match (&config.model, data) {
        (ModelSpec::Llama(llama), PageData::Text { train, validation }) => {
            let corpus = TextCorpus::from_splits(
                (&train.0, &train.1),
                (&validation.0, &validation.1),
                llama.context,
                None,
            )?;
            Ok((Arc::new(corpus).into(), Standardize::IDENTITY))
        }
        (ModelSpec::Llama(_), PageData::Images(_)) => Err(Error::InvalidConfig(
            "the language model trains on text: build it with Comparison.createText".into(),
        )),
        (_, PageData::Images(images)) => {
            let standardize = match config.normalize {
                true => Standardize::of(&images.train),
                false => Standardize::IDENTITY,
            };
            Ok((images.into(), standardize))
        }
        (model, PageData::Text { .. }) => Err(Error::InvalidConfig(format!(
            "the {} model classifies images: build it with Comparison.create",
            model.name()
        ))),
    }
}

/// Most characters one [`Pair::sample`] call may generate.
pub const MAX_SAMPLE_LENGTH: usize = 256;

/// How the page asks both language models to continue a prompt, as JSON:
/// `{ prompt, length, temperature, topK, seed }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleOptions {
    /// The text to continue; every character must be in the corpus's vocabulary.
    pub prompt: String,
    /// Characters to generate (1 to [`MAX_SAMPLE_LENGTH`]).
    pub length: usize,
    /// Softmax temperature.
    pub temperature: f64,
    /// Draw only among the k most likely characters (`None`: all).
    pub top_k: Option<usize>,
    /// Seed of the draws, the same for both models.
    pub seed: u64,
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

/// Two runs' reconstructions of the same masked images, as the page paints them.
#[derive(Debug, Serialize)]
pub struct ReconstructionView {
    /// Image height and width in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Patch side in pixels.
    pub patch: usize,
    /// The number of images.
    pub count: usize,
    /// Per image and patch (row-major over the grid): whether the mask removed it.
    pub removed: Vec<bool>,
    /// The images as given, `count * height * width` values in `[0, 1]`.
    pub images: Vec<f32>,
    /// Per run: the visible patches as given and the removed ones as predicted.
    pub runs: [Vec<f32>; 2],
}

impl From<Reconstructions> for ReconstructionView {
    fn from(shown: Reconstructions) -> Self {
        let [_, height, width] = shown.shape;
        let m = shown.masks.masking();
        let removed = (0..shown.count())
            .flat_map(|row| (0..m.patches()).map(move |p| (row, p)))
            .map(|(row, p)| shown.masks.is_removed(row, p))
            .collect();
        Self {
            height,
            width,
            patch: m.grid.patch,
            count: shown.count(),
            removed,
            images: shown.images,
            runs: shown.runs,
        }
    }
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
    pub fn new(ctx: &GpuContext, data: PageData, options: &PairOptions) -> Result<Self> {
        let [a, b] = options.configs()?;
        let (data, standardize) = train_data(&a, data)?;
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

    /// Evaluates both models: test accuracy and loss over the whole test set, or a
    /// language model's validation loss (nats per token) and next-character accuracy
    /// over the preset's validation windows.
    pub async fn evaluate(&mut self) -> Result<[EvalMetrics; 2]> {
        let a = self.sessions.run_mut(0).evaluate().await?;
        let b = self.sessions.run_mut(1).evaluate().await?;
        Ok([a, b])
    }

    /// Both language models' continuations of the same prompt with the same sampling
    /// seed (the library's [`generate`]), base run first. Fails for image models, a
    /// prompt character outside the corpus's vocabulary or bad sampling options.
    pub async fn sample(&mut self, options: &SampleOptions) -> Result<[String; 2]> {
        if !(1..=MAX_SAMPLE_LENGTH).contains(&options.length) {
            return Err(Error::InvalidConfig(format!(
                "between 1 and {MAX_SAMPLE_LENGTH} characters per sample, got {}",
                options.length
            )));
        }
        let vocab = self
            .sessions
            .run(0)
            .data()
            .vocab()
            .cloned()
            .ok_or_else(|| {
                Error::InvalidConfig(
                    "sampling needs a language model (an image model is selected)".into(),
                )
            })?;
        let prompt = vocab.encode(&options.prompt, "the prompt")?;
        let sampling = Sampling {
            temperature: options.temperature,
            top_k: options.top_k,
            seed: options.seed,
        };
        let mut texts = [String::new(), String::new()];
        for (run, text) in texts.iter_mut().enumerate() {
            let (model, _) = self.sessions.run_mut(run).parts_mut();
            let drawn = generate(model, &prompt, options.length, &sampling).await?;
            *text = vocab.decode(&drawn).ok_or_else(|| {
                Error::InvalidConfig("the model drew a character outside the vocabulary".into())
            })?;
        }
        Ok(texts)
    }

    /// Both masked autoencoders' reconstructions of the first `count` test digits
    /// under the fixed validation masks. Fails for a model that does not reconstruct.
    pub async fn reconstruct_test(&mut self, count: usize) -> Result<ReconstructionView> {
        Reconstructions::of_test_images(&mut self.sessions, count)
            .await?
            .map(ReconstructionView::from)
            .ok_or_else(|| {
                Error::InvalidConfig("the selected model does not reconstruct masked images".into())
            })
    }

    /// Both masked autoencoders' reconstructions of one image (pixels in `[0, 1]`)
    /// under the random mask drawn from `mask_seed`.
    pub async fn reconstruct_drawing(
        &mut self,
        pixels: &[f32],
        mask_seed: u64,
    ) -> Result<ReconstructionView> {
        let shown = Reconstructions::of_drawing(&mut self.sessions, pixels, mask_seed).await?;
        Ok(shown.into())
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
