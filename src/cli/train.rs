//! `coptim train`: one training run, with checkpoints and `--resume`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use coptim::data::DatasetSplit;
use coptim::train::report::{create_dir, history_csv};
use coptim::train::{Event, History, ModelSpec, OptimizerKind, Runner, Session, TrainConfig};
use coptim::{ContextOptions, Error, GpuContext};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// The models of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// Multi-layer perceptron, 784-256-10 with ReLU.
    Mlp,
    /// Vision transformer: patch 14, width 64, 2 blocks of 4 heads.
    Vit,
}

impl ModelArg {
    /// The model's default configuration.
    pub fn spec(self) -> ModelSpec {
        match self {
            ModelArg::Mlp => ModelSpec::default_mlp(),
            ModelArg::Vit => ModelSpec::default_vit(),
        }
    }
}

/// Parses an optimizer name for clap.
pub fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    s.parse::<OptimizerKind>().map_err(|e| e.to_string())
}

/// Options shared by `train` and `compare`: what each run looks like.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The model.
    #[arg(long, value_enum, default_value_t = ModelArg::Mlp)]
    pub model: ModelArg,
    /// Training steps (default: 500 for the MLP, 600 for the ViT).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Peak learning rate (default: tuned per model and optimizer).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Decoupled weight decay (default: tuned per model and optimizer).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Samples per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// Evaluate on the test set every this many steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub eval_every: u64,
    /// Train on the four standard MNIST-format files in this directory
    /// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    /// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`) instead of the
    /// bundled 10,000 digits.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl RunArgs {
    /// The run configuration for `optimizer` and `seed`.
    pub fn config(&self, optimizer: OptimizerKind, seed: u64) -> TrainConfig {
        let mut c = TrainConfig::for_model(self.model.spec(), optimizer);
        if let Some(steps) = self.steps {
            c = c.with_steps(steps);
        }
        if let Some(lr) = self.lr {
            c.lr = lr;
        }
        if let Some(wd) = self.weight_decay {
            c.weight_decay = wd;
        }
        c.batch_size = self.batch_size;
        c.clip_grad_norm = self.clip_grad_norm;
        c.eval_every = self.eval_every;
        c.seed = seed;
        c
    }
}

/// Loads `--data DIR` or the bundled digits; returns the data and its name.
pub fn load_data(dir: Option<&PathBuf>) -> coptim::Result<(Arc<DatasetSplit>, String)> {
    Ok(match dir {
        Some(d) => (
            Arc::new(coptim::data::load_mnist_dir(d)?),
            d.display().to_string(),
        ),
        None => (
            Arc::new(coptim::data::bundled_mnist()?),
            "bundled-mnist".into(),
        ),
    })
}

/// Arguments of `coptim train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's model, budget and data.
    #[command(flatten)]
    pub run: RunArgs,
    /// The optimizer: adamw, c-adamw, lion, c-lion, sgd or c-sgd.
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
    /// configuration comes from the checkpoint; `--data` must name the same data).
    #[arg(long)]
    pub resume: bool,
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
    mean_kept_fraction: Option<f64>,
    median_step_ms: Option<f64>,
    samples_per_s: Option<f64>,
    checkpoint: PathBuf,
}

/// Trains, checkpointing into `--out`.
pub fn run(args: &TrainArgs) -> coptim::Result<()> {
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    let (data, dataset) = load_data(args.run.data.as_ref())?;
    create_dir(&args.out)?;
    let checkpoint = args.out.join("checkpoint.safetensors");
    let mut session = if args.resume {
        let s = Session::resume(&ctx, data, &checkpoint)?;
        eprintln!(
            "resuming {} with {} from step {} of {}",
            s.config().model.name(),
            s.config().optimizer,
            s.steps_recorded(),
            s.config().steps
        );
        s
    } else {
        Session::new(&ctx, args.run.config(args.optimizer, args.seed), data)?
    };
    let config = session.config().clone();
    let bar = ProgressBar::new(config.steps).with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} {}", config.model.name(), config.optimizer));
    bar.set_position(session.steps_recorded());
    let runner = Runner {
        checkpoint: Some(checkpoint.clone()),
        checkpoint_every: args.checkpoint_every,
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
    let window = History::smoothing_window(config.steps);
    let history = session.history();
    coptim::file_io::write_atomic(
        &args.out.join("metrics.csv"),
        history_csv(history, window).as_bytes(),
    )?;
    if let Err(e) = result {
        if let Error::NonFiniteLoss { .. } = e {
            eprintln!(
                "the last good checkpoint is {} (step {last_checkpoint})",
                checkpoint.display()
            );
        }
        return Err(e);
    }
    let eval = history.last_eval();
    let median_step_ms = history.median_step_ms();
    let report = RunReport {
        dataset,
        steps_completed: session.steps_recorded(),
        final_train_loss: history.final_loss(window),
        test_loss: eval.map(|e| e.loss),
        test_accuracy: eval.map(|e| e.accuracy),
        mean_kept_fraction: history.mean_kept_fraction(),
        median_step_ms,
        samples_per_s: median_step_ms.map(|ms| config.batch_size as f64 * 1e3 / ms),
        checkpoint,
        config,
    };
    let json = serde_json::to_string_pretty(&report).expect("the report serializes");
    coptim::file_io::write_atomic(&args.out.join("run.json"), json.as_bytes())?;
    if args.json {
        println!("{json}");
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
