//! `coptim compare`: the main job. The same model from the same initialization on
//! the same batches with a plain optimizer and its cautious twin, over several seeds.

use std::path::PathBuf;

use clap::Args;
use coptim::train::compare::Summary;
use coptim::train::compare::{CompareConfig, CompareEvent, compare_on};
use coptim::train::{OptimizerKind, chart, reconstruction_chart, report};
use coptim::{ContextOptions, Error, GpuContext};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::train::{RunArgs, parse_optimizer};

/// The most seeds one comparison or sweep runs (each trains two models).
const MAX_SEEDS: u64 = 1000;
/// The most runs trained at once (`--jobs`), each on a device of its own.
const MAX_JOBS: u64 = 64;

/// The optimizers and seeds of `coptim compare` and `coptim sweep`.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// The base optimizer and the cautious one: `adamw,c-adamw` or `adamw c-adamw`;
    /// any two names `train --optimizer` takes (`nadamw,cnadamw`, `laprop,claprop`).
    #[arg(long, value_delimiter = ',', num_args = 1..=2, default_value = "adamw,c-adamw", value_parser = parse_optimizer)]
    pub pair: Vec<OptimizerKind>,
    /// Number of seeds (0, 1, ...), at most 1000; each trains both optimizers (in a
    /// sweep, at every learning rate).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_SEEDS))]
    pub seeds: u64,
}

impl PairArgs {
    /// `[base, cautious]`; fails unless `--pair` named two optimizers.
    pub fn pair(&self) -> coptim::Result<[OptimizerKind; 2]> {
        <[OptimizerKind; 2]>::try_from(self.pair.clone()).map_err(|_| {
            Error::InvalidConfig(format!(
                "--pair takes two optimizers, got {}",
                self.pair.len()
            ))
        })
    }
}

/// Arguments of `coptim compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The runs' model, budget and data.
    #[command(flatten)]
    pub run: RunArgs,
    /// The optimizers and seeds.
    #[command(flatten)]
    pub pair: PairArgs,
    /// Directory for `metrics.csv`, `summary.json`, `curves.png` and `curves.svg`
    /// (and, for a masked autoencoder, `reconstructions.png`).
    #[arg(long, default_value = "coptim-compare")]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Masked autoencoder (`--model mae`): after training, fit a linear classifier on
    /// each run's frozen encoder (class-token features, every patch visible,
    /// standardized) on the training digits and report its test accuracy
    /// (`probe_accuracy` per run in `--json`).
    #[arg(long)]
    pub probe: bool,
    /// Train this many runs at once, each on a GPU device of its own on a thread of
    /// its own (a CPU adapter such as lavapipe runs each device's work on one core);
    /// the results are the same for any number. Default: on a CPU adapter the number of
    /// CPU cores, on a GPU 1 (on an H200 two MAE runs at once took 37.7 ms per step each
    /// against 16.2 ms one at a time); never more than the number of runs.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_JOBS))]
    pub jobs: Option<u64>,
}

impl CompareArgs {
    /// The number of runs to train at once on an adapter of `device_type`: `--jobs`,
    /// or the number of CPU cores on a CPU adapter and 1 on a GPU; never more than the
    /// comparison's runs.
    pub fn jobs(&self, device_type: wgpu::DeviceType) -> usize {
        let default = match device_type {
            wgpu::DeviceType::Cpu => std::thread::available_parallelism().map_or(1, |n| n.get()),
            _ => 1,
        };
        let wanted = self.jobs.map_or(default, |j| j as usize);
        wanted.min(2 * self.pair.seeds as usize)
    }
}

/// Runs the comparison and writes its reports.
pub fn run(args: &CompareArgs) -> coptim::Result<()> {
    let [base, cautious] = args.pair.pair()?;
    let first = GpuContext::new_blocking(&ContextOptions::default())?;
    let jobs = args.jobs(first.adapter_info().device_type);
    let contexts = std::iter::once(Ok(first))
        .chain((1..jobs).map(|_| GpuContext::new_blocking(&ContextOptions::default())))
        .collect::<coptim::Result<Vec<_>>>()?;
    let run = args.run.config(base, 0);
    let (data, dataset) = args.run.load_data(&run.model, None)?;
    let mut config = CompareConfig::new(run.for_data(&data), args.pair.seeds, dataset);
    config.pair = [base, cautious];
    config.probe = args.probe;
    let text = data.vocab().is_some();
    report::create_dir(&args.out)?;

    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos:>5}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let bars: Vec<ProgressBar> = config
        .runs()
        .iter()
        .map(|(o, s)| {
            let bar = multi.add(ProgressBar::new(config.run.steps).with_style(style.clone()));
            bar.set_prefix(format!("{o} seed {s}"));
            bar.set_message("waiting");
            bar
        })
        .collect();
    let summary = compare_on(&contexts, data, &config, |e| match e {
        CompareEvent::Started { index } => bars[index].set_message("starting"),
        CompareEvent::Step { index, metrics } => {
            let bar = &bars[index];
            bar.set_position(metrics.step);
            let kept = metrics
                .kept_fraction
                .map_or(String::new(), |k| format!(" kept {k:.3}"));
            bar.set_message(format!("loss {:.4}{kept}", metrics.loss));
        }
        CompareEvent::Finished {
            index,
            test_accuracy,
            test_loss,
        } => bars[index].finish_with_message(match text {
            true => format!("val loss {test_loss:.4} nats/token"),
            false => format!("test accuracy {:.2}%", 100.0 * test_accuracy),
        }),
    })?;
    crate::cli::finish(&summary, args.json, &args.out)?;
    if reconstruction_chart::write_reconstructions(&summary, &args.out)?.is_some() && !args.json {
        println!("wrote reconstructions.png to {}", args.out.display());
    }
    Ok(())
}

/// The files the command writes into its `--out` directory.
const FILES: &str = "metrics.csv, summary.json, curves.png and curves.svg";

crate::cli::outcome!(Summary, FILES, report, chart);
