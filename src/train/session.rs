//! [`Session`]: one training run on the GPU (a model, its optimizer, the batch stream
//! and the metrics so far), stepped by the caller and read without blocking.

use std::collections::VecDeque;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::model::{BatchMetrics, Model};
use crate::optim::{StepInputs, TrainOptimizer};
use crate::train::clock::now_ms;
use crate::train::config::TrainConfig;
use crate::train::metrics::{EvalMetrics, History, StepMetrics};
use crate::train::source::{Feed, TrainData};

/// A step submitted to the GPU whose record has not been read back yet.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    step: u64,
    submitted_ms: f64,
}

/// One training run: the model and its optimizer on the GPU, the deterministic batch
/// stream, and the [`History`] of metrics read back so far.
///
/// The core never blocks, reads files or spawns threads, so it runs in the browser as
/// well as natively: [`Session::step`] records and submits one training step
/// (forward, backward, optional clipping and the optimizer step, all in one command
/// encoder) and returns at once; [`Session::poll`] returns the metrics of the steps
/// the GPU has finished since the last call (loss, batch accuracy, learning rate,
/// kept fraction, step time); [`Session::evaluate`] is async. Native programs use
/// [`Session::run_blocking`](crate::train::Session::run_blocking) or the
/// [`Runner`](crate::train::Runner).
///
/// ```no_run
/// # fn main() -> coptim::Result<()> {
/// use std::sync::Arc;
/// use coptim::train::{OptimizerKind, Session, TrainConfig};
/// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
/// let data = Arc::new(coptim::data::bundled_mnist()?);
/// let mut session = Session::new(&ctx, TrainConfig::mlp(OptimizerKind::C_ADAMW), data)?;
/// while !session.is_finished() {
///     session.step()?; // e.g. a few per animation frame in a browser
///     for m in session.poll()? {
///         println!("step {} loss {:.4} kept {:?}", m.step, m.loss, m.kept_fraction);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Session {
    config: TrainConfig,
    model: Model,
    optimizer: TrainOptimizer,
    data: TrainData,
    feed: Feed,
    recorded: u64,
    in_flight: VecDeque<InFlight>,
    last_seen_ms: Option<f64>,
    history: History,
    failure: Option<(u64, f32)>,
}

impl Session {
    /// Creates the model (initialized from the config's seed), the optimizer and the
    /// feed of `data` (images: batches of `train`, evaluation on `test`; text: random
    /// windows of the training split, evaluation on every validation window). Fails
    /// if the configuration is invalid or the data does not fit the model.
    pub fn new(ctx: &GpuContext, config: TrainConfig, data: impl Into<TrainData>) -> Result<Self> {
        let data = data.into();
        config.validate()?;
        data.check_fits(&config.model.architecture().io(), config.batch_size)?;
        let model = config.model.build(ctx, config.seed)?;
        let optimizer = TrainOptimizer::new(ctx, model.store(), &config.engine_config())?;
        let feed = Feed::new(&config, &data);
        Ok(Self {
            config,
            model,
            optimizer,
            data,
            feed,
            recorded: 0,
            in_flight: VecDeque::new(),
            last_seen_ms: None,
            history: History::default(),
            failure: None,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The model (parameters, inference).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &TrainOptimizer {
        &self.optimizer
    }

    /// The data this run trains and evaluates on.
    pub fn data(&self) -> &TrainData {
        &self.data
    }

    /// The metrics read back so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Steps submitted to the GPU so far.
    pub fn steps_recorded(&self) -> u64 {
        self.recorded
    }

    /// Steps submitted whose metrics have not been read back yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether every step of the configured budget has been submitted.
    pub fn is_finished(&self) -> bool {
        self.recorded >= self.config.steps
    }

    /// The step and loss of the first non-finite loss seen, if any; the session
    /// refuses to step after one.
    pub fn failure(&self) -> Option<(u64, f32)> {
        self.failure
    }

    /// The learning rate of step `step` (1-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        self.config.lr * self.config.schedule().factor(step)
    }

    /// Records and submits the next training step: uploads its batch, runs forward and
    /// backward, and steps the optimizer. Returns without waiting for the GPU. Fails
    /// once the budget is used up or after a non-finite loss
    /// ([`Error::NonFiniteLoss`]).
    pub fn step(&mut self) -> Result<()> {
        if let Some((step, loss)) = self.failure {
            return Err(Error::NonFiniteLoss { step, loss });
        }
        if self.is_finished() {
            return Err(Error::InvalidConfig(format!(
                "the run is finished: all {} steps were taken",
                self.config.steps
            )));
        }
        let step = self.recorded + 1;
        let batch = self.feed.next_batch(step, self.config.batch_size);
        let ctx = self.model.context().clone();
        let mut encoder = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("coptim training step"),
            });
        let outputs = self.model.record_forward_backward(&mut encoder, batch)?;
        // One record per step: the optimizer's, carrying the batch's loss and accuracy.
        self.optimizer
            .record_step(&mut encoder, &outputs.step_inputs(StepInputs::scheduled()))?;
        let submit = || ctx.queue().submit([encoder.finish()]);
        if step == 1 {
            // The first dispatch of every kernel: a validation error becomes an Err.
            ctx.guarded("the first training step", submit)?;
        } else {
            submit();
        }
        self.recorded = step;
        self.in_flight.push_back(InFlight {
            step,
            submitted_ms: now_ms(),
        });
        Ok(())
    }

    /// The metrics of every step the GPU has finished since the last call, oldest
    /// first, without waiting; they are also appended to [`Session::history`]. Fails
    /// with [`Error::NonFiniteLoss`] when one of them has a NaN or infinite loss (the
    /// history still holds it).
    pub fn poll(&mut self) -> Result<Vec<StepMetrics>> {
        let records = self.optimizer.take_stats()?;
        let now = now_ms();
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let f = match self.in_flight.pop_front() {
                Some(f) if f.step == record.scheduled_step => f,
                _ => {
                    return Err(Error::Readback(format!(
                        "the record of step {} arrived out of order",
                        record.scheduled_step
                    )));
                }
            };
            let labels = self.config.batch_size * self.model.labels_per_sample();
            let batch = BatchMetrics::from_record(&record, labels)?;
            let start = self
                .last_seen_ms
                .map_or(f.submitted_ms, |t| t.max(f.submitted_ms));
            let m = StepMetrics {
                step: f.step,
                loss: batch.loss,
                accuracy: batch.accuracy() as f32,
                lr: record.lr,
                kept_fraction: Some(record.kept_fraction()),
                step_ms: Some(now - start),
            };
            if !m.loss.is_finite() && self.failure.is_none() {
                self.failure = Some((m.step, m.loss));
            }
            out.push(m);
        }
        if !out.is_empty() {
            self.last_seen_ms = Some(now);
        }
        self.history.steps.extend_from_slice(&out);
        match self.failure {
            Some((step, loss)) => Err(Error::NonFiniteLoss { step, loss }),
            None => Ok(out),
        }
    }

    /// Whether the runner should evaluate now: every `eval_every` steps and after the
    /// last one, once per step count.
    pub fn wants_eval(&self) -> bool {
        let every = self.config.eval_every;
        let due = (every > 0 && self.recorded.is_multiple_of(every)) || self.is_finished();
        due && self.recorded > 0
            && self
                .history
                .last_eval()
                .is_none_or(|e| e.step < self.recorded)
    }

    /// Evaluates the current parameters (after every step recorded so far) on the test
    /// set (text: every validation window; the loss is then nats per token) and
    /// appends the result to the history. Async: natively use
    /// [`Session::evaluate_blocking`].
    pub async fn evaluate(&mut self) -> Result<EvalMetrics> {
        let e = self
            .model
            .evaluate_batches(self.feed.evaluation(), self.config.eval_batch_size)
            .await?;
        let m = EvalMetrics {
            step: self.recorded,
            loss: e.loss,
            accuracy: e.accuracy(),
        };
        self.history.evals.push(m);
        Ok(m)
    }

    /// Restores the state a checkpoint describes: the step count and history (the
    /// parameters and optimizer state are written by the caller); clears a failure.
    pub(crate) fn set_progress(&mut self, recorded: u64, history: History) {
        self.recorded = recorded;
        self.history = history;
        self.in_flight.clear();
        self.last_seen_ms = None;
        self.failure = None;
    }

    /// The model and optimizer, mutably (for restoring a checkpoint).
    pub(crate) fn parts_mut(&mut self) -> (&mut Model, &mut TrainOptimizer) {
        (&mut self.model, &mut self.optimizer)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Session {
    /// Blocking form of [`Session::evaluate`].
    pub fn evaluate_blocking(&mut self) -> Result<EvalMetrics> {
        pollster::block_on(self.evaluate())
    }

    /// Waits for every submitted step and returns their metrics (see
    /// [`Session::poll`]).
    pub fn wait(&mut self) -> Result<Vec<StepMetrics>> {
        // A mapping callback can run on another thread's poll, slightly after ours
        // returns: poll again a bounded number of times before giving up.
        const ATTEMPTS: usize = 1000;
        let mut out = Vec::new();
        let mut idle = 0;
        while !self.in_flight.is_empty() {
            self.model
                .context()
                .device()
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Readback(e.to_string()))?;
            let got = self.poll()?;
            if got.is_empty() {
                idle += 1;
                if idle == ATTEMPTS {
                    return Err(Error::Readback(
                        "the GPU finished but step metrics did not arrive".into(),
                    ));
                }
                std::thread::yield_now();
            } else {
                idle = 0;
            }
            out.extend(got);
        }
        Ok(out)
    }
}
