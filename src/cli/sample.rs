//! `coptim sample`: text from a language model's checkpoint.

use std::path::PathBuf;

use clap::Args;
use coptim::model::{Sampling, generate_blocking};
use coptim::train::CheckpointFile;
use coptim::{ContextOptions, Error, GpuContext};

/// Arguments of `coptim sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A checkpoint of `coptim train --model llama` (`checkpoint.safetensors`).
    #[arg(long)]
    pub from: PathBuf,
    /// The text to continue; every character must be in the checkpoint's vocabulary.
    #[arg(long)]
    pub prompt: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 200)]
    pub length: usize,
    /// Softmax temperature (below 1: more likely characters).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Draw only among the k most likely characters.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Prints the prompt and its continuation.
pub fn run(args: &SampleArgs) -> coptim::Result<()> {
    let bytes = coptim::file_io::read_file(&args.from)?;
    let source = args.from.display().to_string();
    let (config, vocab, params) = CheckpointFile::weights(&bytes, &source)?;
    let vocab = vocab.ok_or_else(|| {
        Error::InvalidConfig(format!(
            "{source} holds a {} model trained on images; sampling needs a language model (--model llama)",
            config.model.name()
        ))
    })?;
    let prompt = vocab.encode(&args.prompt, "--prompt")?;
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    let mut model = config.model.build(&ctx, config.seed)?;
    model.write_parameters(&params)?;
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
    };
    let drawn = generate_blocking(&mut model, &prompt, args.length, &sampling)?;
    let text = vocab.decode(&drawn).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "the model's {} outputs exceed the checkpoint's vocabulary of {} characters",
            model.io().classes,
            vocab.len()
        ))
    })?;
    println!("{}{text}", args.prompt);
    Ok(())
}
