//! Training a group of a sweep's runs at once on one device: step `k` of every run
//! is submitted before any is waited for, so the device works on one run while the
//! host records the next. Unlike [`Lockstep`](crate::train::Lockstep), whose runs
//! stop together at the first error, a run whose loss turns non-finite (a learning
//! rate too high) stops alone and is recorded as diverged.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::train::metrics::{EvalMetrics, History};
use crate::train::session::Session;
use crate::train::source::{Feed, TrainData};

/// How one run of a group ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its metrics (non-finite entries of a diverged run removed).
    pub history: History,
    /// The test split's metrics after its last step (`None`: diverged).
    pub test: Option<EvalMetrics>,
    /// Why it stopped early, if it did.
    pub diverged: Option<String>,
    /// Its share of the group's wall time, in seconds.
    pub wall_s: f64,
}

/// Trains `sessions` to the end of their budgets together, evaluating each on its
/// validation set when due and on `test` after its last step. `on_steps` sees the
/// number of steps (of any run) finished or given up since its last call.
pub fn train_group(
    mut sessions: Vec<Session>,
    test: &TrainData,
    mut on_steps: impl FnMut(u64),
) -> Result<Vec<Outcome>> {
    let started = Instant::now();
    let mut diverged: Vec<Option<String>> = vec![None; sessions.len()];
    loop {
        let live: Vec<usize> = (0..sessions.len())
            .filter(|&i| diverged[i].is_none() && !sessions[i].is_finished())
            .collect();
        if live.is_empty() {
            break;
        }
        for &i in &live {
            sessions[i].step()?;
        }
        for &i in &live {
            match sessions[i].wait() {
                Ok(steps) => on_steps(steps.len() as u64),
                Err(e @ Error::NonFiniteLoss { .. }) => {
                    let s = &sessions[i];
                    on_steps(s.config().steps - s.history().steps.len() as u64 + 1);
                    diverged[i] = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        for &i in &live {
            if diverged[i].is_none() && sessions[i].wants_eval() {
                sessions[i].evaluate_blocking()?;
            }
        }
    }
    let share = started.elapsed().as_secs_f64() / sessions.len() as f64;
    sessions
        .iter_mut()
        .zip(diverged)
        .map(|(session, diverged)| finish(session, test, diverged, share))
        .collect()
}

/// The outcome of a trained `session`: evaluated on `test` unless it diverged (or
/// its last validation loss is not finite, which counts as diverging).
fn finish(
    session: &mut Session,
    test: &TrainData,
    mut diverged: Option<String>,
    wall_s: f64,
) -> Result<Outcome> {
    let last = session.history().last_eval().map(|e| e.loss);
    if diverged.is_none() && last.is_none_or(|l| !l.is_finite()) {
        diverged = Some(format!(
            "non-finite validation loss {last:?} after the last step"
        ));
    }
    let test = match diverged {
        None => Some(evaluate_on(session, test)?),
        Some(_) => None,
    };
    let mut history = session.history().clone();
    history
        .steps
        .retain(|m| m.loss.is_finite() && m.accuracy.is_finite());
    history
        .evals
        .retain(|e| e.loss.is_finite() && e.accuracy.is_finite());
    Ok(Outcome {
        history,
        test,
        diverged,
        wall_s,
    })
}

/// Evaluates `session`'s current parameters on `data`'s evaluation set (the same
/// input standardization as its training feed, since both views share the training
/// samples), without adding it to the session's history.
fn evaluate_on(session: &mut Session, data: &TrainData) -> Result<EvalMetrics> {
    let config = session.config().clone();
    let feed = Feed::new(&config, data);
    let (model, _) = session.parts_mut();
    let e = model.evaluate_batches_blocking(feed.evaluation(), config.eval_batch_size)?;
    Ok(EvalMetrics {
        step: config.steps,
        loss: e.loss,
        accuracy: e.accuracy(),
    })
}
