//! `coptim sweep`: each optimizer of a pair at its own best learning rate. For each
//! optimizer a grid of learning rates, several seeds per rate (the same
//! initialization and batches per seed as [`compare`](crate::train::compare)); the
//! rate with the lowest mean validation loss (a split held out of the training data,
//! [`SweepData`]) is chosen, and the report compares the two tuned runs (and both at
//! the base optimizer's tuned rate, the "drop-in" question) with bootstrap intervals
//! ([`stats`]). Finished runs go to a results file as they finish ([`results`]), so
//! an interrupted sweep resumes.

#[cfg(feature = "cli")]
pub mod chart;
mod drive;
pub mod report;
pub mod results;
mod split;
pub mod stats;
mod summary;

pub use split::{SweepData, VALIDATION_STRIDE};
pub use summary::{SpeedupReport, SweepSummary, TunedReport};

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::train::config::{OptimizerKind, TrainConfig};
use crate::train::measures::RunMeasures;
use crate::train::metrics::History;
use crate::train::session::Session;
use results::{ResultsFile, RunRecord, RunRow, config_hash};

/// The default grid: these multiples of the preset's learning rate (a factor of 2
/// between neighbours, a factor of 16 in all).
pub const DEFAULT_LR_FACTORS: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];

/// Evaluations per run when the preset evaluates only at the end (steps to a
/// validation loss need intermediate ones): every `steps / EVALS_PER_RUN` steps.
pub const EVALS_PER_RUN: u64 = 25;

/// What to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfig {
    /// The base optimizer's run of seed 0; every run copies it with its own
    /// optimizer, learning rate and seed (the weight decay is kept as given).
    pub run: TrainConfig,
    /// The base optimizer and the other (cautious) one.
    pub pair: [OptimizerKind; 2],
    /// Each optimizer's learning rates, in the order of `pair`.
    pub lrs: [Vec<f64>; 2],
    /// The seeds; each gives one run per optimizer and rate.
    pub seeds: Vec<u64>,
    /// The data set's name for reports.
    pub dataset: String,
    /// Runs trained at once on the device.
    pub concurrent: usize,
    /// Stop after starting this many runs (the rest on a later call).
    pub max_runs: Option<usize>,
}

impl SweepConfig {
    /// The grid `DEFAULT_LR_FACTORS` times `center`.
    pub fn default_lrs(center: f64) -> Vec<f64> {
        DEFAULT_LR_FACTORS.iter().map(|f| f * center).collect()
    }

    /// The configuration of one run.
    pub fn run_config(&self, optimizer: OptimizerKind, lr: f64, seed: u64) -> TrainConfig {
        TrainConfig {
            optimizer,
            lr,
            seed,
            ..self.run.clone()
        }
    }

    /// Checks the pair, the grids, the seeds and the concurrency.
    pub fn validate(&self) -> Result<()> {
        if self.pair[0] == self.pair[1] {
            return Err(Error::InvalidConfig(format!(
                "the pair compares {} with itself",
                self.pair[0]
            )));
        }
        if self.seeds.is_empty() || self.concurrent == 0 {
            return Err(Error::InvalidConfig(
                "a sweep needs at least one seed and one run at a time".into(),
            ));
        }
        for (o, lrs) in self.pair.iter().zip(&self.lrs) {
            check_lrs(*o, lrs)?;
        }
        Ok(())
    }

    /// The grid runs `(optimizer, lr, seed)`, seed by seed.
    fn grid_runs(&self) -> Vec<(OptimizerKind, f64, u64)> {
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for (&o, lrs) in self.pair.iter().zip(&self.lrs) {
                runs.extend(lrs.iter().map(|&lr| (o, lr, seed)));
            }
        }
        runs
    }
}

/// A grid needs at least two distinct, finite, positive rates.
fn check_lrs(optimizer: OptimizerKind, lrs: &[f64]) -> Result<()> {
    if let Some(bad) = lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
        return Err(Error::InvalidConfig(format!(
            "learning rate {bad} of {optimizer}: every rate of a sweep must be finite and positive"
        )));
    }
    let mut distinct = lrs.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() != lrs.len() || lrs.len() < 2 {
        return Err(Error::InvalidConfig(format!(
            "{optimizer}: a sweep needs at least two distinct learning rates, got {lrs:?}"
        )));
    }
    Ok(())
}

/// What [`sweep`] reports while it works.
#[derive(Debug, Clone, Copy)]
pub enum SweepEvent<'a> {
    /// `runs` more runs of `steps` steps each will be trained (`skipped` were
    /// found in the results file).
    Planned {
        /// Runs to train.
        runs: usize,
        /// Runs already finished.
        skipped: usize,
        /// Steps per run.
        steps: u64,
    },
    /// This many steps (of any run) finished.
    Steps(u64),
    /// A run finished and was written to the results file.
    Finished(&'a RunRow),
}

/// Trains every run of `config` missing from `results` (the grid, then the cautious
/// optimizer at the base one's tuned rate when its grid lacks it), appending each to
/// `results`, and summarizes. `Ok(None)` when `config.max_runs` stopped it early.
pub fn sweep(
    ctx: &GpuContext,
    data: &SweepData,
    config: &SweepConfig,
    results: &mut ResultsFile,
    mut observe: impl FnMut(SweepEvent<'_>),
) -> Result<Option<SweepSummary>> {
    config.validate()?;
    let hashes = config
        .pair
        .map(|o| config_hash(&config.run_config(o, 0.0, 0), data.fingerprint()));
    for (o, h) in config.pair.iter().zip(&hashes) {
        results.check_hash(*o, h)?;
    }
    let mut trainer = Trainer {
        ctx,
        data,
        config,
        hashes,
        budget: config.max_runs.unwrap_or(usize::MAX),
    };
    if !trainer.train_missing(&config.grid_runs(), results, &mut observe)? {
        return Ok(None);
    }
    let base_lr = summary::tuned_base_lr(config, results, &trainer.hashes[0])?;
    let drop_in: Vec<_> = config
        .seeds
        .iter()
        .map(|&s| (config.pair[1], base_lr, s))
        .collect();
    if !trainer.train_missing(&drop_in, results, &mut observe)? {
        return Ok(None);
    }
    summary::summarize(
        config,
        data,
        results,
        &trainer.hashes,
        &ctx.report().adapter,
    )
    .map(Some)
}

/// What training a sweep's missing runs needs.
struct Trainer<'a> {
    ctx: &'a GpuContext,
    data: &'a SweepData,
    config: &'a SweepConfig,
    /// Each optimizer's configuration hash, in the order of the pair.
    hashes: [String; 2],
    /// Runs this call may still start.
    budget: usize,
}

impl Trainer<'_> {
    fn hash(&self, optimizer: OptimizerKind) -> &str {
        &self.hashes[usize::from(optimizer == self.config.pair[1])]
    }

    /// Trains the runs of `wanted` that `results` lacks, `concurrent` at a time,
    /// within the budget; false when the budget ran out first.
    fn train_missing(
        &mut self,
        wanted: &[(OptimizerKind, f64, u64)],
        results: &mut ResultsFile,
        observe: &mut impl FnMut(SweepEvent<'_>),
    ) -> Result<bool> {
        let missing: Vec<_> = wanted
            .iter()
            .copied()
            .filter(|&(o, lr, s)| results.find(o, lr, s, self.hash(o)).is_none())
            .collect();
        let now = missing.len().min(self.budget);
        observe(SweepEvent::Planned {
            runs: now,
            skipped: wanted.len() - missing.len(),
            steps: self.config.run.steps,
        });
        for group in missing[..now].chunks(self.config.concurrent) {
            let sessions = group
                .iter()
                .map(|&(o, lr, s)| {
                    let run = self.config.run_config(o, lr, s);
                    Session::new(self.ctx, run, self.data.tuning.clone())
                })
                .collect::<Result<Vec<_>>>()?;
            let outcomes =
                drive::train_group(sessions, &self.data.test, |n| observe(SweepEvent::Steps(n)))?;
            for (&run, outcome) in group.iter().zip(outcomes) {
                results.append(record(self.config, run, self.hash(run.0), outcome))?;
                let row = &results.records().last().expect("just appended").row;
                observe(SweepEvent::Finished(row));
            }
        }
        self.budget -= now;
        Ok(now == missing.len())
    }
}

/// The results-file record of a finished run.
fn record(
    config: &SweepConfig,
    (optimizer, lr, seed): (OptimizerKind, f64, u64),
    hash: &str,
    outcome: drive::Outcome,
) -> RunRecord {
    let finite = |v: f64| v.is_finite().then_some(v);
    let window = History::smoothing_window(config.run.steps);
    let history = outcome.history;
    let val_loss = match outcome.diverged {
        None => history.last_eval().and_then(|e| finite(e.loss)),
        Some(_) => None,
    };
    RunRecord {
        row: RunRow {
            measured: RunMeasures {
                optimizer,
                seed,
                final_train_loss: history.final_loss(window).and_then(finite),
                test_accuracy: outcome.test.and_then(|t| finite(t.accuracy)),
                test_loss: outcome.test.and_then(|t| finite(t.loss)),
                val_loss,
                mean_kept_fraction: history.mean_kept_fraction(),
                wall_s: outcome.wall_s,
            },
            lr,
            diverged: outcome.diverged,
        },
        config_hash: hash.to_string(),
        history,
    }
}
