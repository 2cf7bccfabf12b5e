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

/// Prints a finished command's result: `json` on stdout when `as_json`, else
/// `table` and a line naming the `files` written to `out`.
fn print_result(
    as_json: bool,
    json: impl FnOnce() -> String,
    table: impl FnOnce() -> String,
    files: &str,
    out: &std::path::Path,
) {
    if as_json {
        println!("{}", json());
    } else {
        print!("{}", table());
        println!("wrote {files} to {}", out.display());
    }
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
