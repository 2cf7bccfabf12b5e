//! `coptim presets`: the model presets and each optimizer's defaults on them, as the
//! README's Markdown table (the README holds exactly this output) or as JSON.

use clap::Args;
use coptim::train::presets;

/// Arguments of `coptim presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Print every preset as JSON (what the browser page reads) instead of the
    /// README's Markdown table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the presets.
pub fn run(args: &PresetsArgs) -> coptim::Result<()> {
    if args.json {
        let json = serde_json::to_string_pretty(&presets::views())
            .map_err(|e| coptim::Error::InvalidConfig(e.to_string()))?;
        println!("{json}");
    } else {
        print!("{}", presets::markdown());
    }
    Ok(())
}
