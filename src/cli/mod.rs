//! Command-line interface: one module per subcommand.

mod bench;
mod bench_nn;
mod compare;
mod info;
mod presets;
mod sample;
mod sweep;
mod train;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, Parser, Subcommand};

/// Cautious optimizers on WebGPU.
#[derive(Debug, Parser)]
#[command(name = "coptim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the adapter, backend, limits and features coptim would use.
    Info(info::InfoArgs),
    /// Time optimizer steps against the bandwidth of a copy kernel.
    Bench(bench::BenchArgs),
    /// Train a model with one optimizer, with checkpoints and `--resume`.
    Train(train::TrainArgs),
    /// Compare a plain optimizer with its cautious twin over several seeds (the main
    /// job): same model, initialization and batches; prints a table and writes
    /// metrics.csv, summary.json and loss curves.
    Compare(compare::CompareArgs),
    /// Sweep the learning rate of both optimizers of a pair over several seeds, pick
    /// each one's best rate by validation loss, and compare them there with bootstrap
    /// intervals (and at the base's rate: drop-in); resumable.
    Sweep(sweep::SweepArgs),
    /// Continue a prompt with a language model's checkpoint (`train --model llama`).
    Sample(sample::SampleArgs),
    /// List the model presets with their training defaults and each optimizer's
    /// learning rate and weight decay (the README's table; `--json` for JSON).
    Presets(presets::PresetsArgs),
}

/// Runs a parsed command line; `matches` tells which flags were given explicitly.
pub fn run(cli: Cli, matches: &ArgMatches) -> coptim::Result<()> {
    match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => train::run(&args, &explicit_flags(matches, "train")),
        Command::Compare(args) => compare::run(&args),
        Command::Presets(args) => presets::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Sample(args) => sample::run(&args),
    }
}

/// What a finished `compare` or `sweep` hands back: reports to write, JSON and a table.
trait Outcome {
    /// The files [`Outcome::write`] writes, for the closing line.
    const FILES: &'static str;
    /// Writes the reports and charts into `dir`.
    fn write(&self, dir: &std::path::Path) -> coptim::Result<()>;
    /// The summary as JSON.
    fn json(&self) -> String;
    /// The summary as a text table.
    fn table(&self) -> String;
}

/// Implements [`Outcome`] for the summary type `$summary`, writing `$files` with
/// the `write_reports`, `summary_json` and `table` of module `$report` and the
/// `write_charts` of module `$chart`.
macro_rules! outcome {
    ($summary:ty, $files:expr, $report:ident, $chart:ident) => {
        impl crate::cli::Outcome for $summary {
            const FILES: &'static str = $files;

            fn write(&self, dir: &std::path::Path) -> coptim::Result<()> {
                $report::write_reports(self, dir)?;
                $chart::write_charts(self, dir)
            }

            fn json(&self) -> String {
                $report::summary_json(self)
            }

            fn table(&self) -> String {
                $report::table(self)
            }
        }
    };
}
pub(crate) use outcome;

/// Writes `outcome`'s reports to `out`, then prints its JSON on stdout when
/// `as_json`, else its table and a line naming the files written.
fn finish<O: Outcome>(outcome: &O, as_json: bool, out: &std::path::Path) -> coptim::Result<()> {
    outcome.write(out)?;
    if as_json {
        println!("{}", outcome.json());
    } else {
        print!("{}", outcome.table());
        println!("wrote {} to {}", O::FILES, out.display());
    }
    Ok(())
}

/// The flags of `subcommand` given on the command line (not defaulted), as
/// `--long` names.
fn explicit_flags(matches: &ArgMatches, subcommand: &str) -> Vec<String> {
    let (Some(sub), Some(command)) = (
        matches.subcommand_matches(subcommand),
        Cli::command().find_subcommand(subcommand).cloned(),
    ) else {
        return Vec::new();
    };
    command
        .get_arguments()
        .filter(|arg| sub.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|arg| arg.get_long().map(|l| format!("--{l}")))
        .collect()
}
