//! Command-line interface: one module per subcommand.

mod bench;
mod info;

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
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> coptim::Result<()> {
    match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}
