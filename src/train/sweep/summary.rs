//! The summary of a sweep (`sweep.json`, `coptim sweep --json`), built from the
//! results file alone, so a resumed sweep reports exactly what a fresh one would.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{InputKind, Task};
use crate::train::compare::Spread;
use crate::train::config::{OptimizerKind, TrainConfig};
use crate::train::metrics::History;
use crate::train::pair_setup::PairSetup;
use crate::train::sweep::results::{ResultsFile, RunRecord, RunRow};
use crate::train::sweep::stats::{
    BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, GridPoint, Interval, SeedSpeedup, bootstrap_median,
    tuned_lr,
};
use crate::train::sweep::{SweepConfig, SweepData};

/// The resampling behind every interval, as the report states it.
pub const BOOTSTRAP_METHOD: &str = "median of the per-seed speed-ups; 95% percentile bootstrap: seed indices resampled with replacement, 10,000 resamples, ChaCha8 stream with a fixed seed";

/// One optimizer at its tuned learning rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunedReport {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Its tuned learning rate.
    pub lr: f64,
    /// Final validation loss over the seeds.
    pub val_loss: Spread,
    /// Test loss over the seeds (text: nats per token).
    pub test_loss: Spread,
    /// Test accuracy over the seeds.
    pub test_accuracy: Spread,
    /// Per seed, the steps to the base optimizer's final validation loss at its
    /// tuned rate (`None`: not reached).
    pub steps_to_base_final_val_loss: Vec<Option<u64>>,
}

/// The speed-up of the second optimizer of the pair over the first, each at a
/// given rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedupReport {
    /// The median over seeds and its bootstrap interval.
    #[serde(flatten)]
    pub interval: Interval,
    /// The base optimizer's rate.
    pub base_lr: f64,
    /// The other optimizer's rate.
    pub lr: f64,
    /// Every seed's speed-up.
    pub per_seed: Vec<SeedSpeedup>,
    /// Seeds where the other run never reached the target (counted at its budget).
    pub not_reached: usize,
}

/// The result of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSummary {
    /// The model, data, budget, pair and seeds.
    #[serde(flatten)]
    pub setup: PairSetup,
    /// How validation was held out.
    pub split: String,
    /// Each optimizer's learning rates.
    pub lrs: BTreeMap<String, Vec<f64>>,
    /// Every run of the grids and of the drop-in comparison.
    pub runs: Vec<RunRow>,
    /// Each optimizer's grid, over the seeds.
    pub grid: BTreeMap<String, Vec<GridPoint>>,
    /// Each optimizer's rate with the lowest mean validation loss.
    pub tuned_lr: BTreeMap<String, f64>,
    /// Both optimizers at their tuned rates, base first.
    pub tuned: Vec<TunedReport>,
    /// At the tuned rates.
    pub speedup: SpeedupReport,
    /// Both at the base optimizer's tuned rate.
    pub speedup_at_base_lr: SpeedupReport,
    /// `accuracy` (image classifiers) or `loss` (language models: nats per token;
    /// masked autoencoders: reconstruction loss).
    pub test_metric: String,
    /// What the test loss measures: `nats per token` (language models), `mean squared
    /// error on the masked patches` (masked autoencoders) or `nats per image`.
    pub test_loss_unit: String,
    /// The resampling of the intervals.
    pub bootstrap: String,
    /// The adapter the runs used.
    pub adapter: String,
    /// The base optimizer's configuration (learning rate and seed of its tuned run
    /// of the first seed).
    pub config: TrainConfig,
    /// The histories of the runs at the tuned rates and of the drop-in runs, as
    /// `(optimizer, lr, seed, history)`, for the curves.
    #[serde(skip)]
    pub curves: Vec<(OptimizerKind, f64, u64, History)>,
}

/// The runs of `config` in `results`, looked up by optimizer, rate and seed.
struct Runs<'a> {
    config: &'a SweepConfig,
    records: Vec<&'a RunRecord>,
}

impl<'a> Runs<'a> {
    fn new(config: &'a SweepConfig, results: &'a ResultsFile, hashes: &[String]) -> Self {
        let hash = |o: OptimizerKind| &hashes[usize::from(o == config.pair[1])];
        let records = results
            .records()
            .iter()
            .filter(|r| {
                config.pair.contains(&r.row.measured.optimizer)
                    && r.config_hash == *hash(r.row.measured.optimizer)
            })
            .collect();
        Self { config, records }
    }

    fn get(&self, optimizer: OptimizerKind, lr: f64, seed: u64) -> Option<&'a RunRecord> {
        self.records.iter().copied().find(|r| {
            r.row.measured.optimizer == optimizer && r.row.lr == lr && r.row.measured.seed == seed
        })
    }

    /// The finished (not diverged) history of a run.
    fn history(&self, optimizer: OptimizerKind, lr: f64, seed: u64) -> Option<&'a History> {
        self.get(optimizer, lr, seed)
            .filter(|r| r.row.diverged.is_none())
            .map(|r| &r.history)
    }

    fn grid(&self, which: usize) -> Vec<GridPoint> {
        let o = self.config.pair[which];
        self.config.lrs[which]
            .iter()
            .map(|&lr| {
                let losses: Vec<Option<f64>> = (self.config.seeds.iter())
                    .map(|&s| self.get(o, lr, s).and_then(|r| r.row.measured.val_loss))
                    .collect();
                GridPoint::of(lr, &losses)
            })
            .collect()
    }

    fn tuned(&self, which: usize) -> Result<f64> {
        tuned_lr(&self.grid(which)).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "no learning rate of {} finished every seed without diverging: try lower --lrs",
                self.config.pair[which]
            ))
        })
    }

    fn speedup(&self, base_lr: f64, lr: f64) -> SpeedupReport {
        let [base, other] = self.config.pair;
        let per_seed: Vec<SeedSpeedup> = (self.config.seeds.iter())
            .filter_map(|&s| {
                let b = self.history(base, base_lr, s)?;
                SeedSpeedup::of(s, b, self.history(other, lr, s), self.config.run.steps)
            })
            .collect();
        let values: Vec<f64> = per_seed.iter().map(|s| s.speedup).collect();
        SpeedupReport {
            interval: bootstrap_median(&values, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
            base_lr,
            lr,
            not_reached: per_seed.iter().filter(|s| s.steps.is_none()).count(),
            per_seed,
        }
    }
}

/// The base optimizer's tuned rate from the runs in `results`.
pub(crate) fn tuned_base_lr(
    config: &SweepConfig,
    results: &ResultsFile,
    hash: &str,
) -> Result<f64> {
    Runs::new(config, results, &[hash.to_string(), String::new()]).tuned(0)
}

/// The summary of the sweep `config` from its runs in `results`.
pub(crate) fn summarize(
    config: &SweepConfig,
    data: &SweepData,
    results: &ResultsFile,
    hashes: &[String; 2],
    adapter: &str,
) -> Result<SweepSummary> {
    let runs = Runs::new(config, results, hashes);
    let tuned = [runs.tuned(0)?, runs.tuned(1)?];
    let speedup = runs.speedup(tuned[0], tuned[1]);
    let reports = (0..2)
        .map(|i| tuned_report(&runs, i, tuned[i], &speedup))
        .collect();
    let io = config.run.model.architecture().io();
    let classifier = io.input == InputKind::Images && matches!(io.task, Task::Classify);
    Ok(SweepSummary {
        setup: PairSetup::new(&config.run, &config.dataset, config.pair, &config.seeds),
        split: data.split.clone(),
        lrs: by_name(config, |i| config.lrs[i].clone()),
        runs: summary_rows(&runs, tuned[0]),
        grid: by_name(config, |i| runs.grid(i)),
        tuned_lr: by_name(config, |i| tuned[i]),
        tuned: reports,
        speedup_at_base_lr: runs.speedup(tuned[0], tuned[0]),
        speedup,
        test_metric: if classifier { "accuracy" } else { "loss" }.into(),
        test_loss_unit: match (io.input, io.task) {
            (InputKind::Tokens, _) => "nats per token",
            (_, Task::Reconstruct(_)) => "mean squared error on the masked patches",
            _ => "nats per image",
        }
        .into(),
        bootstrap: BOOTSTRAP_METHOD.into(),
        adapter: adapter.to_string(),
        config: config.run_config(config.pair[0], tuned[0], config.seeds[0]),
        curves: curves(&runs, tuned),
    })
}

/// `f(i)` for each optimizer `i` of the pair, by name.
fn by_name<T>(config: &SweepConfig, f: impl Fn(usize) -> T) -> BTreeMap<String, T> {
    (0..2)
        .map(|i| (config.pair[i].name().to_string(), f(i)))
        .collect()
}

/// The grid runs, then the drop-in runs outside the other optimizer's grid.
fn summary_rows(runs: &Runs<'_>, base_lr: f64) -> Vec<RunRow> {
    let c = runs.config;
    let mut wanted = c.grid_runs();
    if !c.lrs[1].contains(&base_lr) {
        wanted.extend(c.seeds.iter().map(|&s| (c.pair[1], base_lr, s)));
    }
    wanted
        .into_iter()
        .filter_map(|(o, lr, s)| runs.get(o, lr, s).map(|r| r.row.clone()))
        .collect()
}

fn tuned_report(runs: &Runs<'_>, which: usize, lr: f64, speedup: &SpeedupReport) -> TunedReport {
    let o = runs.config.pair[which];
    let rows: Vec<&RunRow> = (runs.config.seeds.iter())
        .filter_map(|&s| runs.get(o, lr, s).map(|r| &r.row))
        .collect();
    let spread = |f: &dyn Fn(&RunRow) -> Option<f64>| {
        Spread::of(&rows.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let steps = speedup
        .per_seed
        .iter()
        .map(|s| {
            if which == 0 {
                Some(s.base_steps)
            } else {
                s.steps
            }
        })
        .collect();
    TunedReport {
        optimizer: o,
        lr,
        val_loss: spread(&|r| r.measured.val_loss),
        test_loss: spread(&|r| r.measured.test_loss),
        test_accuracy: spread(&|r| r.measured.test_accuracy),
        steps_to_base_final_val_loss: steps,
    }
}

/// The histories at the tuned rates and of the drop-in runs.
fn curves(runs: &Runs<'_>, tuned: [f64; 2]) -> Vec<(OptimizerKind, f64, u64, History)> {
    let [base, other] = runs.config.pair;
    let mut wanted = vec![(base, tuned[0]), (other, tuned[1])];
    if tuned[1] != tuned[0] {
        wanted.push((other, tuned[0]));
    }
    let mut out = Vec::new();
    for (o, lr) in wanted {
        for &s in &runs.config.seeds {
            if let Some(r) = runs.get(o, lr, s) {
                out.push((o, lr, s, r.history.clone()));
            }
        }
    }
    out
}
