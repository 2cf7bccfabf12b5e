//! Command-line interface: one module per subcommand.

mod bench;
mod bench_nn;
mod compare;
mod info;
mod train;

use clap::{Parser, Subcommand};

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
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> coptim::Result<()> {
    match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Compare(args) => compare::run(&args),
    }
}
