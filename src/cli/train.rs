//! `coptim train`: one training run, with checkpoints and `--resume`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use coptim::data::text::{TextCorpus, Vocab, bundled_shakespeare, nats_to_bits};
use coptim::optim::DecayMode;
use coptim::train::presets::ModelPreset;
use coptim::train::report::{create_dir, history_csv};
use coptim::train::{
    CheckpointFile, Event, History, ModelSpec, OptimizerKind, Runner, Session, TrainConfig,
    TrainData,
};
use coptim::{ContextOptions, Error, GpuContext};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// Parses a model preset's name for clap (see `coptim presets`).
pub fn parse_model(s: &str) -> Result<&'static ModelPreset, String> {
    ModelPreset::named(s).map_err(|e| e.to_string())
}

/// Parses an optimizer name for clap (any registered name; the error lists them).
pub fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    s.parse::<OptimizerKind>().map_err(|e| e.to_string())
}

/// Options shared by `train` and `compare`: what each run looks like.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The model preset: mlp, vit, mlp-small, vit-tiny, llama (the language model;
    /// also llama-tiny) or mae (the masked autoencoder, trained without labels;
    /// `coptim presets` lists them with their defaults).
    #[arg(long, default_value = "mlp", value_parser = parse_model)]
    pub model: &'static ModelPreset,
    /// Training steps (default: the preset's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Peak learning rate (default: the preset's for the optimizer).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Decoupled weight decay (default: the preset's for the optimizer).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Samples per step (default: the preset's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Clip the global gradient norm to this value (default: the preset's; llama
    /// clips at 1).
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// Cautious weight decay (arXiv 2510.12402): decay only coordinates where the
    /// update and the parameter agree in sign.
    #[arg(long)]
    pub cautious_wd: bool,
    /// timm's corrected weight decay: decay scaled by lr^2 / peak lr (timm names
    /// ending in `c`: `cadamc`, `clionc`, `csgdc`).
    #[arg(long)]
    pub corrected_wd: bool,
    /// Evaluate on the test set (llama: the validation text) every this many steps
    /// (0: only at the end; default: the preset's).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Train on the four standard MNIST-format files in this directory
    /// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    /// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`) instead of the
    /// bundled 10,000 digits.
    #[arg(long, conflicts_with = "text")]
    pub data: Option<PathBuf>,
    /// Train the language model (`--model llama`) on this UTF-8 text, split 90/10 by
    /// position, instead of the bundled Shakespeare.
    #[arg(long)]
    pub text: Option<PathBuf>,
}

impl RunArgs {
    /// The run configuration for `optimizer` and `seed`.
    pub fn config(&self, optimizer: OptimizerKind, seed: u64) -> TrainConfig {
        let mut c = TrainConfig::from_preset(self.model, optimizer);
        if let Some(steps) = self.steps {
            c = c.with_steps(steps);
        }
        if let Some(lr) = self.lr {
            c.lr = lr;
        }
        if let Some(wd) = self.weight_decay {
            c.weight_decay = wd;
        }
        if let Some(batch_size) = self.batch_size {
            c.batch_size = batch_size;
        }
        if self.clip_grad_norm.is_some() {
            c.clip_grad_norm = self.clip_grad_norm;
        }
        c.decay = DecayMode {
            cautious: self.cautious_wd,
            corrected: self.corrected_wd,
        };
        if let Some(every) = self.eval_every {
            c.eval_every = every;
        }
        c.seed = seed;
        c
    }

    /// The data `model` trains on: `--text FILE` or the bundled Shakespeare for the
    /// language model (encoded with `vocab` when given, e.g. a checkpoint's),
    /// `--data DIR` or the bundled digits for the image models. Returns the data and
    /// its name. The wrong kind of data for the model is an error.
    pub fn load_data(
        &self,
        model: &ModelSpec,
        vocab: Option<&Vocab>,
    ) -> coptim::Result<(TrainData, String)> {
        match model {
            ModelSpec::Llama(l) => {
                if let Some(dir) = &self.data {
                    return Err(Error::InvalidConfig(format!(
                        "--data {} holds images, but the llama model trains on text: pass --text FILE (or nothing for the bundled Shakespeare)",
                        dir.display()
                    )));
                }
                let (corpus, name) = load_text(self.text.as_ref(), l.context, vocab)?;
                Ok((TrainData::Text(Arc::new(corpus)), name))
            }
            _ if self.text.is_some() => Err(Error::InvalidConfig(format!(
                "--text trains the language model; --model {} trains on images (--data DIR)",
                model.name()
            ))),
            _ => Ok(match &self.data {
                Some(d) => (
                    TrainData::Images(Arc::new(coptim::data::load_mnist_dir(d)?)),
                    d.display().to_string(),
                ),
                None => (
                    TrainData::Images(Arc::new(coptim::data::bundled_mnist()?)),
                    "bundled-mnist".into(),
                ),
            }),
        }
    }
}

/// The corpus of `--text FILE` or the bundled Shakespeare, cut for `context`, with
/// its own vocabulary or `vocab`; returns it and its name.
fn load_text(
    file: Option<&PathBuf>,
    context: usize,
    vocab: Option<&Vocab>,
) -> coptim::Result<(TextCorpus, String)> {
    Ok(match file {
        Some(f) => (
            TextCorpus::from_file(f, context, vocab)?,
            f.display().to_string(),
        ),
        None => (
            bundled_shakespeare(context, vocab)?,
            "bundled-shakespeare".into(),
        ),
    })
}

/// Arguments of `coptim train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's model, budget and data.
    #[command(flatten)]
    pub run: RunArgs,
    /// The optimizer: adamw, c-adamw, lion, c-lion, sgd, c-sgd, or any timm name
    /// coptim registers (nadamw, cnadamw, laprop, claprop, ..., muon, cmuon, nmuon,
    /// cnmuon, adafactor, cadafactor, adafactorbv, cadafactorbv; an unknown name lists
    /// them all).
    #[arg(long, default_value = "c-adamw", value_parser = parse_optimizer)]
    pub optimizer: OptimizerKind,
    /// Seed of the initialization, the data order and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Directory for `checkpoint.safetensors`, `metrics.csv` and `run.json`.
    #[arg(long, default_value = "coptim-train")]
    pub out: PathBuf,
    /// Write a checkpoint every this many steps (and always after the last one).
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: u64,
    /// Continue the run saved in `--out` exactly where its checkpoint left off (the
    /// configuration comes from the checkpoint, so only `--data` or `--text`, which
    /// must name the run's own data, `--checkpoint-every` and `--json` may be given
    /// with it).
    #[arg(long)]
    pub resume: bool,
    /// Start from the weights of this checkpoint (its model and, for text, its
    /// vocabulary) with a fresh optimizer state and this run's data, budget and
    /// hyper-parameters: e.g. continue a language model on another `--text`. `--model`
    /// must name the checkpoint's kind of model.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Replace the run already in `--out` (its checkpoint, metrics and report)
    /// instead of refusing to start.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Print the run's result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `run.json`: the result of `coptim train`.
#[derive(Debug, Serialize, Deserialize)]
struct RunReport {
    dataset: String,
    config: TrainConfig,
    steps_completed: u64,
    final_train_loss: Option<f64>,
    test_loss: Option<f64>,
    test_accuracy: Option<f64>,
    /// Language models: the validation loss (the test loss) in bits per character.
    val_bits_per_char: Option<f64>,
    mean_kept_fraction: Option<f64>,
    median_step_ms: Option<f64>,
    samples_per_s: Option<f64>,
    /// Language models: training tokens per second.
    tokens_per_s: Option<f64>,
    /// The checkpoint whose weights the run started from, if any.
    init_from: Option<PathBuf>,
    checkpoint: PathBuf,
}

/// The files a run writes into `--out`.
const RUN_FILES: [&str; 3] = ["checkpoint.safetensors", "metrics.csv", "run.json"];

/// The flags `--resume` honours; every other one belongs to the checkpoint's
/// configuration and would be ignored.
const RESUME_FLAGS: [&str; 6] = [
    "--resume",
    "--out",
    "--data",
    "--text",
    "--checkpoint-every",
    "--json",
];

/// Refuses flags that `--resume` would silently ignore.
fn refuse_ignored_flags(explicit: &[String]) -> coptim::Result<()> {
    let ignored: Vec<&str> = explicit
        .iter()
        .map(String::as_str)
        .filter(|f| !RESUME_FLAGS.contains(f))
        .collect();
    if ignored.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidConfig(format!(
        "--resume continues the saved run with its own configuration, so {} would be ignored; drop them (or start a new run in another --out)",
        ignored.join(", ")
    )))
}

/// Creates `--out`, checks that it is writable, and refuses to mix a new run into a
/// directory holding another one unless `--overwrite` (which deletes the old files).
fn prepare_out_dir(args: &TrainArgs) -> coptim::Result<()> {
    create_dir(&args.out)?;
    coptim::file_io::check_writable(&args.out)?;
    if args.resume {
        return Ok(());
    }
    let existing: Vec<PathBuf> = RUN_FILES
        .iter()
        .map(|f| args.out.join(f))
        .filter(|p| p.is_file())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    if !args.overwrite {
        return Err(Error::InvalidConfig(format!(
            "{} holds another run ({}); pass --resume to continue it, --overwrite to replace it, or choose another --out",
            args.out.display(),
            existing
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for path in existing {
        std::fs::remove_file(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The session to train, resumed from `checkpoint` or new, and its data's name. A
/// resumed text run encodes its text with the checkpoint's vocabulary (a character
/// outside it is an error naming it).
fn open_session(
    ctx: &GpuContext,
    args: &TrainArgs,
    checkpoint: &std::path::Path,
) -> coptim::Result<(Session, String)> {
    if let Some(init) = &args.init_from {
        return init_session(ctx, args, init);
    }
    if !args.resume {
        let config = args.run.config(args.optimizer, args.seed);
        let (data, name) = args.run.load_data(&config.model, None)?;
        let session = Session::new(ctx, config.for_data(&data), data)?;
        return Ok((session, name));
    }
    let bytes = coptim::file_io::read_file(checkpoint)?;
    let source = checkpoint.display().to_string();
    let config = CheckpointFile::config_of(&bytes, &source)?;
    let vocab = CheckpointFile::vocab_of(&bytes, &source)?;
    let (data, name) = args.run.load_data(&config.model, vocab.as_ref())?;
    let s = Session::from_checkpoint_bytes(ctx, data, &bytes, &source)?;
    eprintln!(
        "resuming {} with {} from step {} of {}",
        s.config().model.name(),
        s.config().optimizer,
        s.steps_recorded(),
        s.config().steps
    );
    Ok((s, name))
}

/// A new session of `args` whose model and weights (and text vocabulary) come from
/// the checkpoint `init`, with a fresh optimizer.
fn init_session(
    ctx: &GpuContext,
    args: &TrainArgs,
    init: &std::path::Path,
) -> coptim::Result<(Session, String)> {
    let bytes = coptim::file_io::read_file(init)?;
    let source = init.display().to_string();
    let (saved, vocab, params) = CheckpointFile::weights(&bytes, &source)?;
    let mut config = args.run.config(args.optimizer, args.seed);
    if config.model.name() != saved.model.name() {
        return Err(Error::InvalidConfig(format!(
            "{source} holds a {} model; pass --model {} (its training defaults) to start from it",
            saved.model.name(),
            saved.model.name()
        )));
    }
    config.model = saved.model;
    let (data, name) = args.run.load_data(&config.model, vocab.as_ref())?;
    let session = Session::new(ctx, config, data)?;
    session.model().write_parameters(&params)?;
    Ok((session, name))
}

/// Trains, checkpointing into `--out`; `explicit` lists the flags given on the
/// command line.
pub fn run(args: &TrainArgs, explicit: &[String]) -> coptim::Result<()> {
    if args.resume {
        refuse_ignored_flags(explicit)?;
    }
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    prepare_out_dir(args)?;
    let checkpoint = args.out.join("checkpoint.safetensors");
    let (mut session, dataset) = open_session(&ctx, args, &checkpoint)?;
    let bar = progress_bar(&session);
    let runner = Runner {
        checkpoint: Some(checkpoint.clone()),
        checkpoint_every: args.checkpoint_every,
        ..Runner::default()
    };
    let mut last_checkpoint = session.steps_recorded();
    let result = runner.run(&mut session, |e| match e {
        Event::Step(m) => {
            bar.set_position(m.step);
            let kept = m
                .kept_fraction
                .map_or(String::new(), |k| format!(" kept {k:.3}"));
            bar.set_message(format!("loss {:.4}{kept}", m.loss));
        }
        Event::Eval(e) => bar.println(format!(
            "step {}: test loss {:.4}, test accuracy {:.2}%",
            e.step,
            e.loss,
            100.0 * e.accuracy
        )),
        Event::Checkpoint(step) => last_checkpoint = step,
    });
    bar.finish_and_clear();
    let window = History::smoothing_window(session.config().steps);
    let written = coptim::file_io::write_atomic(
        &args.out.join("metrics.csv"),
        history_csv(session.history(), window).as_bytes(),
    );
    if let Err(e) = result {
        // The training error comes first; a failed write is reported after it.
        if let Err(w) = written {
            eprintln!("also: {w}");
        }
        if matches!(
            e,
            Error::NonFiniteLoss { .. } | Error::NonFiniteParameters { .. }
        ) {
            match last_checkpoint {
                0 => eprintln!("no checkpoint was written before the run diverged"),
                step => eprintln!(
                    "the last good checkpoint is {} (step {step})",
                    checkpoint.display()
                ),
            }
        }
        return Err(e);
    }
    written?;
    write_report(args, &session, dataset, checkpoint)
}

fn progress_bar(session: &Session) -> ProgressBar {
    let config = session.config();
    let bar = ProgressBar::new(config.steps).with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} {}", config.model.name(), config.optimizer));
    bar.set_position(session.steps_recorded());
    bar
}

/// Writes `run.json` and prints the result.
fn write_report(
    args: &TrainArgs,
    session: &Session,
    dataset: String,
    checkpoint: PathBuf,
) -> coptim::Result<()> {
    let config = session.config().clone();
    let history = session.history();
    let window = History::smoothing_window(config.steps);
    let eval = history.last_eval();
    let median_step_ms = history.median_step_ms();
    let samples_per_s = median_step_ms.map(|ms| config.batch_size as f64 * 1e3 / ms);
    let text = session.data().vocab().is_some();
    let per_sample = session.model().labels_per_sample() as f64;
    let report = RunReport {
        dataset,
        steps_completed: session.steps_recorded(),
        final_train_loss: history.final_loss(window),
        test_loss: eval.map(|e| e.loss),
        test_accuracy: eval.map(|e| e.accuracy),
        val_bits_per_char: eval.filter(|_| text).map(|e| nats_to_bits(e.loss)),
        mean_kept_fraction: history.mean_kept_fraction(),
        median_step_ms,
        samples_per_s,
        tokens_per_s: samples_per_s.filter(|_| text).map(|s| s * per_sample),
        init_from: args.init_from.clone(),
        checkpoint,
        config,
    };
    let json = serde_json::to_string_pretty(&report).expect("the report serializes");
    coptim::file_io::write_atomic(&args.out.join("run.json"), json.as_bytes())?;
    if args.json {
        println!("{json}");
    } else if text {
        println!(
            "{} with {}: final train loss {:.4}, validation loss {:.4} nats/token ({:.4} bits/char), {:.0} tokens/s; wrote {}",
            report.config.model.name(),
            report.config.optimizer,
            report.final_train_loss.unwrap_or(f64::NAN),
            report.test_loss.unwrap_or(f64::NAN),
            report.val_bits_per_char.unwrap_or(f64::NAN),
            report.tokens_per_s.unwrap_or(f64::NAN),
            args.out.display()
        );
    } else {
        println!(
            "{} with {}: final train loss {:.4}, test accuracy {:.2}%, {:.0} samples/s; wrote {}",
            report.config.model.name(),
            report.config.optimizer,
            report.final_train_loss.unwrap_or(f64::NAN),
            100.0 * report.test_accuracy.unwrap_or(f64::NAN),
            report.samples_per_s.unwrap_or(f64::NAN),
            args.out.display()
        );
    }
    Ok(())
}
