//! The main job: train the same model from the same initialization on the same
//! batches with a plain optimizer and its cautious twin, over several seeds, and
//! measure how many steps the cautious one needs to reach the plain one's final
//! training loss.
//!
//! Definitions (also in the README):
//! - *final train loss*: the mean training loss over the last 5% of the steps
//!   ([`History::smoothing_window`]);
//! - *steps to base final loss*: image models: the first step at which a run's
//!   trailing mean loss (same window) is at most the final train loss of the base run
//!   of the same seed; language models: the first validation (every `eval_every`
//!   steps) whose loss is at most the base run's final validation loss; masked
//!   autoencoders likewise on their validation reconstruction loss (fixed masks);
//! - *speed-up* of a seed: the base run's steps to its own final loss divided by the
//!   cautious run's; `None` if the cautious run never gets there. The summary gives
//!   the median, minimum and maximum over the seeds where both reached it.

use serde::Serialize;

use crate::context::GpuContext;
use crate::data::Dataset;
use crate::data::text::nats_to_bits;
use crate::error::{Error, Result};
use crate::model::{InputKind, Mae, Task};
use crate::train::config::{ModelSpec, OptimizerKind, TrainConfig};
use crate::train::inputs::Standardize;
use crate::train::lockstep::Lockstep;
use crate::train::measures::RunMeasures;
use crate::train::metrics::{History, StepMetrics, median};
use crate::train::pair_setup::PairSetup;
use crate::train::probe::mae_probe_accuracy;
use crate::train::reconstruction::{Reconstructions, SHOWN_IMAGES};
use crate::train::session::Session;
use crate::train::source::TrainData;

mod workers;

/// What to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    /// The run of the base optimizer for seed 0; every run copies it with its own
    /// optimizer and seed (the learning rate and weight decay are kept as given).
    pub run: TrainConfig,
    /// The base optimizer and the cautious one.
    pub pair: [OptimizerKind; 2],
    /// The seeds; each gives one run per optimizer.
    pub seeds: Vec<u64>,
    /// The data set's name for reports, e.g. `bundled-mnist`.
    pub dataset: String,
    /// Masked autoencoders: measure every run's linear-probe test accuracy
    /// ([`crate::train::probe`]).
    pub probe: bool,
}

impl CompareConfig {
    /// AdamW against C-AdamW on `run`'s model over seeds `0..seeds`.
    pub fn new(run: TrainConfig, seeds: u64, dataset: impl Into<String>) -> Self {
        Self {
            pair: [OptimizerKind::ADAMW, OptimizerKind::C_ADAMW],
            run,
            seeds: (0..seeds).collect(),
            dataset: dataset.into(),
            probe: false,
        }
    }

    /// The configuration of the run of `optimizer` with `seed`.
    pub fn run_config(&self, optimizer: OptimizerKind, seed: u64) -> TrainConfig {
        TrainConfig {
            optimizer,
            seed,
            ..self.run.clone()
        }
    }

    /// The runs in the order they are trained: for each seed, base then cautious.
    pub fn runs(&self) -> Vec<(OptimizerKind, u64)> {
        self.seeds
            .iter()
            .flat_map(|&s| self.pair.map(|o| (o, s)))
            .collect()
    }
}

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    /// What it measured.
    #[serde(flatten)]
    pub measured: RunMeasures,
    /// Language models: the validation loss ([`RunMeasures::val_loss`]) in bits per
    /// character.
    pub val_bits_per_char: Option<f64>,
    /// First step that reaches the same seed's base final loss (train loss for image
    /// models, validation loss for language models; see the module docs).
    pub steps_to_base_final_loss: Option<u64>,
    /// Median milliseconds per training step.
    pub median_step_ms: Option<f64>,
    /// Training samples per second (batch size over the median step time).
    pub samples_per_s: Option<f64>,
    /// Training tokens per second (language models; `None` for image models).
    pub tokens_per_s: Option<f64>,
    /// Masked autoencoders with [`CompareConfig::probe`]: the linear probe's test
    /// accuracy on the frozen encoder's class-token features.
    pub probe_accuracy: Option<f64>,
    /// Every step's and evaluation's metrics.
    #[serde(skip)]
    pub history: History,
}

/// Median, minimum and maximum over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The median.
    pub median: Option<f64>,
    /// The smallest value.
    pub min: Option<f64>,
    /// The largest value.
    pub max: Option<f64>,
}

impl Spread {
    /// The spread of `values` (all `None` when empty).
    pub fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        Self {
            median: median(&mut v),
            min: v.first().copied(),
            max: v.last().copied(),
        }
    }
}

/// Per-optimizer means over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizerSummary {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Its learning rate.
    pub lr: f64,
    /// Its weight decay.
    pub weight_decay: f64,
    /// Final train loss over seeds.
    pub final_train_loss: Spread,
    /// Test accuracy over seeds.
    pub test_accuracy: Spread,
    /// Wall time over seeds.
    pub wall_s: Spread,
    /// Training throughput over seeds.
    pub samples_per_s: Spread,
    /// Linear-probe test accuracy over seeds (masked autoencoders with a probe).
    pub probe_accuracy: Spread,
}

/// The result of a comparison (`summary.json`, `coptim compare --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The model, data, budget, pair and seeds.
    #[serde(flatten)]
    pub setup: PairSetup,
    /// The model's number of parameters.
    pub parameters: u64,
    /// Trailing-mean window of the loss definitions, in steps.
    pub loss_window: usize,
    /// Every run, in training order.
    pub runs: Vec<RunResult>,
    /// Speed-up of the cautious optimizer over the seeds where it reached the base
    /// final loss.
    pub speedup: Spread,
    /// Speed-up per seed, in seed order (`None`: not reached).
    pub speedup_per_seed: Vec<Option<f64>>,
    /// Per-optimizer summaries, base first.
    pub optimizers: Vec<OptimizerSummary>,
    /// Language models: the validation loss (nats per token) of a bigram model fitted
    /// on the training split, the yardstick ([`TextCorpus::bigram_val_loss`](crate::data::text::TextCorpus::bigram_val_loss));
    /// `None` for image models.
    pub bigram_val_loss: Option<f64>,
    /// Masked autoencoders: the validation loss of predicting every removed patch as
    /// the mean training patch, the yardstick ([`Mae::mean_patch_baseline`](crate::model::Mae::mean_patch_baseline)); `None`
    /// for other models.
    pub baseline_val_loss: Option<f64>,
    /// The adapter the runs used.
    pub adapter: String,
    /// The full configuration of the base run of the first seed.
    pub config: TrainConfig,
    /// Reconstructing models: the first seed's two runs' reconstructions of the
    /// first test images under the fixed validation masks (`reconstructions.png`).
    #[serde(skip)]
    pub reconstructions: Option<Reconstructions>,
}

impl Summary {
    /// The runs of `optimizer`.
    pub fn runs_of(&self, optimizer: OptimizerKind) -> impl Iterator<Item = &RunResult> {
        self.runs
            .iter()
            .filter(move |r| r.measured.optimizer == optimizer)
    }
}

/// What [`compare`] reports while it works.
#[derive(Debug, Clone, Copy)]
pub enum CompareEvent<'a> {
    /// Run `index` (into [`CompareConfig::runs`]) is starting.
    Started {
        /// The run's index.
        index: usize,
    },
    /// Run `index` finished a step.
    Step {
        /// The run's index.
        index: usize,
        /// The step's metrics.
        metrics: &'a StepMetrics,
    },
    /// Run `index` finished, with its test accuracy.
    Finished {
        /// The run's index.
        index: usize,
        /// Test accuracy after the last step.
        test_accuracy: f64,
        /// Test loss (language models: validation loss, nats per token) after the
        /// last step.
        test_loss: f64,
    },
}

/// Trains every run of `config` on `data`, one after the other on `ctx`, and
/// summarizes them (see [`compare_on`]).
pub fn compare(
    ctx: &GpuContext,
    data: impl Into<TrainData>,
    config: &CompareConfig,
    observe: impl FnMut(CompareEvent<'_>),
) -> Result<Summary> {
    compare_on(std::slice::from_ref(ctx), data, config, observe)
}

/// Trains every run of `config` on `data` on one worker thread per context (each
/// its own device, e.g. a queue thread each on a CPU adapter; no more workers than
/// runs) and summarizes them. A run depends only on its optimizer and seed, so the
/// results are the same for any number of contexts; only the times differ.
/// `observe` sees every run's start, steps and end, on the calling thread. A run's
/// wall time counts its own steps and evaluations. The first failure stops the
/// other runs at their next step and is returned.
pub fn compare_on(
    contexts: &[GpuContext],
    data: impl Into<TrainData>,
    config: &CompareConfig,
    observe: impl FnMut(CompareEvent<'_>),
) -> Result<Summary> {
    check(config, contexts)?;
    let data = data.into();
    let bigram = match &data {
        TrainData::Text(corpus) => Some(corpus.bigram_val_loss()),
        TrainData::Images(_) => None,
    };
    let baseline = mean_patch_baseline(&config.run, &data);
    let probe = match config.probe {
        true => Some(ProbeData::new(&config.run, &data)?),
        false => None,
    };
    let mut trained = workers::train_runs(contexts, &data, config, probe.as_ref(), observe)?;
    let parameters = trained.first().map_or(0, |t| t.parameters);
    // The first seed's two runs, the reconstructions picture's.
    let first_seed = trained.iter_mut().filter_map(|t| t.session.take());
    let mut first_pair = Lockstep::new(first_seed.collect())?;
    let shown = Reconstructions::of_test_images(&mut first_pair, SHOWN_IMAGES);
    let reconstructions = pollster::block_on(shown)?;
    let probes: Vec<Option<f64>> = trained.iter().map(|t| t.probe).collect();
    let finished = config
        .runs()
        .into_iter()
        .zip(trained)
        .map(|((optimizer, seed), t)| (optimizer, seed, t.history, t.busy_s))
        .collect();
    let mut summary = summarize(config, parameters, &contexts[0].report().adapter, finished);
    summary.bigram_val_loss = bigram;
    summary.baseline_val_loss = baseline;
    summary.reconstructions = reconstructions;
    for (run, accuracy) in summary.runs.iter_mut().zip(probes) {
        run.probe_accuracy = accuracy;
    }
    summary.optimizers = optimizer_summaries(config, &summary.runs);
    Ok(summary)
}

/// Refuses a comparison without seeds or contexts, or of an optimizer with itself.
fn check(config: &CompareConfig, contexts: &[GpuContext]) -> Result<()> {
    if config.seeds.is_empty() {
        return Err(Error::InvalidConfig("at least one seed is needed".into()));
    }
    if contexts.is_empty() {
        return Err(Error::InvalidConfig(
            "a comparison needs at least one GPU context to train on".into(),
        ));
    }
    if config.pair[0] == config.pair[1] {
        return Err(Error::InvalidConfig(format!(
            "the pair compares {} with itself",
            config.pair[0]
        )));
    }
    Ok(())
}

/// A masked autoencoder's [`Mae::mean_patch_baseline`](crate::model::Mae::mean_patch_baseline) on `data`'s images as the
/// runs see them (standardized with the training set's statistics when the run
/// normalizes); `None` for other models.
pub fn mean_patch_baseline(run: &TrainConfig, data: &TrainData) -> Option<f64> {
    let (ModelSpec::Mae(mae), TrainData::Images(d)) = (&run.model, data) else {
        return None;
    };
    let standardize = match run.normalize {
        true => Standardize::of(&d.train),
        false => Standardize::IDENTITY,
    };
    let [mut train, mut test] = [&d.train, &d.test].map(|s| s.images().to_vec());
    standardize.apply(&mut train);
    standardize.apply(&mut test);
    Some(mae.mean_patch_baseline(&train, &test))
}

/// A masked autoencoder's linear-probe data: its configuration and both splits'
/// images as the runs see them, with their labels.
pub(super) struct ProbeData {
    mae: Mae,
    train: (Vec<f32>, Vec<u32>),
    test: (Vec<f32>, Vec<u32>),
    classes: usize,
}

impl ProbeData {
    /// The probe data of `run` on `data`; fails unless the run trains a masked
    /// autoencoder on images.
    fn new(run: &TrainConfig, data: &TrainData) -> Result<Self> {
        let (ModelSpec::Mae(mae), TrainData::Images(d)) = (&run.model, data) else {
            return Err(Error::InvalidConfig(format!(
                "the linear probe evaluates a masked autoencoder's encoder; the {} model has none",
                run.model.name()
            )));
        };
        let standardize = match run.normalize {
            true => Standardize::of(&d.train),
            false => Standardize::IDENTITY,
        };
        let split = |s: &Dataset| {
            let mut images = s.images().to_vec();
            standardize.apply(&mut images);
            (
                images,
                s.labels().iter().map(|&l| u32::from(l)).collect::<Vec<_>>(),
            )
        };
        let (train, test) = (split(&d.train), split(&d.test));
        let classes = train
            .1
            .iter()
            .chain(&test.1)
            .max()
            .map_or(0, |&l| l as usize + 1);
        Ok(Self {
            mae: mae.clone(),
            train,
            test,
            classes,
        })
    }

    /// The probe's test accuracy on `session`'s current encoder.
    pub(super) fn accuracy(&self, session: &Session) -> Result<f64> {
        let params = session.model().read_parameters_blocking()?;
        let [train, test] = [&self.train, &self.test].map(|(x, y)| (&x[..], &y[..]));
        mae_probe_accuracy(&self.mae, &params, train, test, self.classes)
    }
}

/// Builds the summary from finished runs `(optimizer, seed, history, wall seconds)`
/// (without a bigram yardstick: [`compare`] adds it for text).
pub fn summarize(
    config: &CompareConfig,
    parameters: u64,
    adapter: &str,
    finished: Vec<(OptimizerKind, u64, History, f64)>,
) -> Summary {
    let window = History::smoothing_window(config.run.steps);
    let runs = run_results(config, window, finished);
    let speedup_per_seed = speedup_per_seed(config, &runs);
    let reached: Vec<f64> = speedup_per_seed.iter().flatten().copied().collect();
    let optimizers = optimizer_summaries(config, &runs);
    Summary {
        setup: PairSetup::new(&config.run, &config.dataset, config.pair, &config.seeds),
        parameters,
        loss_window: window,
        runs,
        speedup: Spread::of(&reached),
        speedup_per_seed,
        optimizers,
        bigram_val_loss: None,
        baseline_val_loss: None,
        adapter: adapter.to_string(),
        config: config.run.clone(),
        reconstructions: None,
    }
}

/// One result per finished run; the steps-to-target use the final loss of the
/// baseline run with the same seed as the target: its train loss over `window` steps
/// for image models, its last validation loss for language models.
fn run_results(
    config: &CompareConfig,
    window: usize,
    finished: Vec<(OptimizerKind, u64, History, f64)>,
) -> Vec<RunResult> {
    let io = config.run.model.architecture().io();
    let tokens = io.input == InputKind::Tokens;
    let labels_per_sample = io.labels_per_sample();
    // Language models and masked autoencoders are judged on the validation loss.
    let on_validation = tokens || io.task != Task::Classify;
    let final_loss = |h: &History| match on_validation {
        true => h.last_eval().map(|e| e.loss),
        false => h.final_loss(window),
    };
    let steps_to = |h: &History, target: f64| match on_validation {
        true => h.evals_to_reach(target),
        false => h.steps_to_reach(target, window),
    };
    let base_finals: Vec<(u64, Option<f64>)> = finished
        .iter()
        .filter(|(o, _, _, _)| *o == config.pair[0])
        .map(|(_, s, h, _)| (*s, final_loss(h)))
        .collect();
    let base_final = |seed: u64| {
        base_finals
            .iter()
            .find(|(s, _)| *s == seed)
            .and_then(|(_, l)| *l)
    };
    finished
        .into_iter()
        .map(|(optimizer, seed, history, wall_s)| {
            let eval = history.last_eval().copied();
            let median_step_ms = history.median_step_ms();
            let samples_per_s = median_step_ms.map(|ms| config.run.batch_size as f64 / (ms / 1e3));
            let val_loss = eval.filter(|_| on_validation).map(|e| e.loss);
            RunResult {
                measured: RunMeasures {
                    optimizer,
                    seed,
                    final_train_loss: history.final_loss(window),
                    test_accuracy: eval.map(|e| e.accuracy),
                    test_loss: eval.map(|e| e.loss),
                    val_loss,
                    mean_kept_fraction: history.mean_kept_fraction(),
                    wall_s,
                },
                val_bits_per_char: val_loss.filter(|_| tokens).map(nats_to_bits),
                steps_to_base_final_loss: base_final(seed).and_then(|t| steps_to(&history, t)),
                median_step_ms,
                samples_per_s,
                tokens_per_s: samples_per_s
                    .filter(|_| tokens)
                    .map(|s| s * labels_per_sample as f64),
                probe_accuracy: None,
                history,
            }
        })
        .collect()
}

/// Per seed: baseline steps over challenger steps to the baseline's final loss
/// (`None` where either run never reached it).
fn speedup_per_seed(config: &CompareConfig, runs: &[RunResult]) -> Vec<Option<f64>> {
    let steps_of = |o: OptimizerKind, seed: u64| {
        runs.iter()
            .find(|r| r.measured.optimizer == o && r.measured.seed == seed)
            .and_then(|r| r.steps_to_base_final_loss)
    };
    config
        .seeds
        .iter()
        .map(
            |&s| match (steps_of(config.pair[0], s), steps_of(config.pair[1], s)) {
                (Some(b), Some(c)) => Some(b as f64 / c as f64),
                _ => None,
            },
        )
        .collect()
}

/// The spread over seeds of each optimizer's results, with its hyperparameters.
fn optimizer_summaries(config: &CompareConfig, runs: &[RunResult]) -> Vec<OptimizerSummary> {
    config
        .pair
        .iter()
        .map(|&o| {
            let of = |f: &dyn Fn(&RunResult) -> Option<f64>| {
                let v: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.measured.optimizer == o)
                    .filter_map(f)
                    .collect();
                Spread::of(&v)
            };
            let rc = config.run_config(o, 0);
            OptimizerSummary {
                optimizer: o,
                lr: rc.lr,
                weight_decay: rc.weight_decay,
                final_train_loss: of(&|r| r.measured.final_train_loss),
                test_accuracy: of(&|r| r.measured.test_accuracy),
                wall_s: of(&|r| Some(r.measured.wall_s)),
                samples_per_s: of(&|r| r.samples_per_s),
                probe_accuracy: of(&|r| r.probe_accuracy),
            }
        })
        .collect()
}
