//! `coptim info`: the adapter and what the engine uses of it.

use clap::Args;
use coptim::{ContextOptions, GpuContext};

/// Arguments of `coptim info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints the context report.
pub fn run(args: &InfoArgs) -> coptim::Result<()> {
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    let report = ctx.report();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        println!("{report}");
    }
    Ok(())
}
