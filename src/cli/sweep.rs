//! `coptim sweep`: both optimizers of a pair over a grid of learning rates and
//! seeds, each at its own best rate by validation loss, with bootstrap intervals;
//! resumable from its results file.

use std::path::PathBuf;

use clap::Args;
use coptim::train::OptimizerKind;
use coptim::train::sweep::SweepSummary;
use coptim::train::sweep::results::{RESULTS_FILE, ResultsFile};
use coptim::train::sweep::{
    EVALS_PER_RUN, SweepConfig, SweepData, SweepEvent, chart, report, sweep,
};
use coptim::{ContextOptions, Error, GpuContext};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::compare::PairArgs;
use crate::cli::train::RunArgs;

/// Runs trained at once by default: on lavapipe one at a time was fastest (8 MLP
/// runs of 100 steps, twice each, interleaved: 1 at once 63 and 83 s, 2 at once 121
/// and 100 s, 4 at once 69 and 87 s; README, `coptim sweep`).
const DEFAULT_CONCURRENT: u64 = 1;

/// Arguments of `coptim sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The runs' model, budget and data (`--lr` moves the centre of the default grid).
    #[command(flatten)]
    pub run: RunArgs,
    /// The optimizers and the seeds per learning rate (as `compare`'s).
    #[command(flatten)]
    pub pair: PairArgs,
    /// The learning rates of both optimizers' grids, comma-separated (at least two;
    /// default: 1/4, 1/2, 1, 2 and 4 times each optimizer's preset rate or `--lr`).
    #[arg(long, allow_hyphen_values = true)]
    pub lrs: Option<String>,
    /// Runs trained at once on the device (their steps interleaved: step k of each
    /// is submitted before any is waited for). Results do not depend on it.
    #[arg(long, default_value_t = DEFAULT_CONCURRENT, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrent: u64,
    /// Train at most this many runs now and stop (rerun the same command to go on).
    #[arg(long)]
    pub max_runs: Option<usize>,
    /// Directory for `runs.jsonl` (the results file a rerun resumes from),
    /// `sweep.json`, `grid.csv`, `metrics.csv`, `sweep.png` and `sweep.svg`.
    #[arg(long, default_value = "coptim-sweep")]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}

/// Parses `--lrs`: comma-separated numbers (checked further by the sweep).
fn parse_lrs(s: &str) -> coptim::Result<Vec<f64>> {
    s.split(',')
        .map(|v| {
            v.trim().parse::<f64>().map_err(|_| {
                Error::InvalidConfig(format!(
                    "--lrs {s:?}: {:?} is not a number (give comma-separated learning rates, e.g. 1e-3,3e-3)",
                    v.trim()
                ))
            })
        })
        .collect()
}

/// The sweep's configuration from the command line.
fn config(
    args: &SweepArgs,
    data: &coptim::train::TrainData,
    dataset: String,
) -> coptim::Result<SweepConfig> {
    let pair = args.pair.pair()?;
    let lrs = match &args.lrs {
        Some(s) => {
            let lrs = parse_lrs(s)?;
            [lrs.clone(), lrs]
        }
        None => pair.map(|o| SweepConfig::default_lrs(args.run.config(o, 0).lr)),
    };
    let mut run = args.run.config(pair[0], 0).for_data(data);
    if args.run.eval_every.is_none() && run.eval_every == 0 {
        run.eval_every = (run.steps / EVALS_PER_RUN).max(1);
    }
    Ok(SweepConfig {
        run,
        pair,
        lrs,
        seeds: (0..args.pair.seeds).collect(),
        dataset,
        concurrent: args.concurrent as usize,
        max_runs: args.max_runs,
    })
}

fn progress_bar() -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, ETA {eta} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let bar = ProgressBar::new(0).with_style(style);
    bar.set_prefix("sweep");
    bar
}

/// Runs the sweep and writes its reports.
pub fn run(args: &SweepArgs) -> coptim::Result<()> {
    let model = args.run.config(OptimizerKind::ADAMW, 0).model;
    let (data, dataset) = args.run.load_data(&model, None)?;
    let config = config(args, &data, dataset)?;
    config.validate()?;
    coptim::train::report::create_dir(&args.out)?;
    let mut results = ResultsFile::open(&args.out)?;
    let data = SweepData::hold_out(&data)?;
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    let bar = progress_bar();
    let (mut done, mut planned) = (0, 0);
    let summary = sweep(&ctx, &data, &config, &mut results, |e| match e {
        SweepEvent::Planned {
            runs,
            skipped,
            steps,
        } => {
            planned += runs;
            bar.inc_length(runs as u64 * steps);
            if skipped > 0 {
                bar.suspend(|| eprintln!("{skipped} runs already in {RESULTS_FILE}: skipped"));
            }
        }
        SweepEvent::Steps(n) => bar.inc(n),
        SweepEvent::Finished(row) => {
            done += 1;
            let loss = row
                .measured
                .val_loss
                .map_or("diverged".into(), |l| format!("val loss {l:.4}"));
            bar.set_message(format!(
                "run {done}/{planned}: {} lr {:.2e} seed {} {loss}",
                row.measured.optimizer, row.lr, row.measured.seed
            ));
        }
    })?;
    bar.finish();
    let Some(summary) = summary else {
        eprintln!(
            "stopped after {done} runs (--max-runs); they are in {}: rerun the same command to continue",
            args.out.join(RESULTS_FILE).display()
        );
        return Ok(());
    };
    crate::cli::finish(&summary, args.json, &args.out)
}

/// The files the command writes into its `--out` directory.
const FILES: &str = "sweep.json, grid.csv, metrics.csv, sweep.png and sweep.svg";

crate::cli::outcome!(SweepSummary, FILES, report, chart);
