//! [`Runner`]: the native training loop around a [`Session`], with periodic
//! evaluation and checkpoints.

use std::borrow::BorrowMut;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::train::lockstep::Lockstep;
use crate::train::metrics::StepMetrics;
use crate::train::session::Session;

/// Drives a session to the end of its budget natively: one step at a time, waiting
/// for each (so every step has its kept fraction and an exact step time),
/// evaluating when [`Session::wants_eval`] says so, and writing checkpoints.
///
/// A non-finite loss stops the run with [`Error::NonFiniteLoss`](crate::Error::NonFiniteLoss)
/// before the next checkpoint, so the file at [`Runner::checkpoint`] keeps the last
/// good state; parameters that turned NaN or infinite while the loss stayed finite
/// stop it with [`Error::NonFiniteParameters`](crate::Error::NonFiniteParameters) at
/// the next checkpoint and at the end.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    /// Where to write checkpoints (`None`: never).
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every this many steps (0: only at the end), and always
    /// after the last step.
    pub checkpoint_every: u64,
    /// Once this flag is set (e.g. by another thread whose run failed), stop before
    /// the next step, leaving the rest of the budget untrained (`None`: never).
    pub stop: Option<Arc<AtomicBool>>,
}

/// What the runner reports to its observer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// A step finished.
    Step(&'a StepMetrics),
    /// An evaluation finished (test loss and accuracy).
    Eval(&'a crate::train::EvalMetrics),
    /// A checkpoint was written after this many steps.
    Checkpoint(u64),
}

impl Runner {
    /// Runs the remaining steps of `session`, calling `observe` on every event.
    /// Stops at the first error.
    pub fn run(&self, session: &mut Session, mut observe: impl FnMut(Event<'_>)) -> Result<()> {
        let mut lockstep = Lockstep::new(vec![session])?;
        self.run_lockstep(&mut lockstep, |_, e| observe(e))
    }

    /// Runs the remaining steps of every run of `lockstep` together (see
    /// [`Lockstep::step_and_wait`]), calling `observe` with the run's index on every
    /// event. Checkpoints need a single run. Stops at the first error, or without one
    /// once [`Runner::stop`] is set.
    pub fn run_lockstep<S: BorrowMut<Session>>(
        &self,
        lockstep: &mut Lockstep<S>,
        mut observe: impl FnMut(usize, Event<'_>),
    ) -> Result<()> {
        if self.checkpoint.is_some() && lockstep.len() != 1 {
            return Err(Error::InvalidConfig(format!(
                "one checkpoint file cannot hold {} runs",
                lockstep.len()
            )));
        }
        let stopped = || {
            self.stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        };
        while !lockstep.is_finished() {
            if stopped() {
                return Ok(());
            }
            for (index, metrics) in lockstep.step_and_wait()?.into_iter().enumerate() {
                for m in metrics {
                    observe(index, Event::Step(&m));
                }
            }
            for (index, e) in lockstep.evaluate_due()? {
                observe(index, Event::Eval(&e));
            }
            if let Some(path) = &self.checkpoint {
                let session = lockstep.run_mut(0);
                let step = session.steps_recorded();
                let due = self.checkpoint_every > 0 && step.is_multiple_of(self.checkpoint_every);
                if due || session.is_finished() {
                    session.save_checkpoint(path)?;
                    observe(0, Event::Checkpoint(step));
                }
            }
        }
        // Saving a checkpoint checks the parameters; without one, check them here.
        if self.checkpoint.is_none() {
            for session in lockstep.runs() {
                pollster::block_on(session.check_parameters())?;
            }
        }
        Ok(())
    }
}

impl Session {
    /// Runs the remaining steps without checkpoints (see [`Runner::run`]), calling
    /// `on_step` with each step's metrics.
    pub fn run_blocking(&mut self, mut on_step: impl FnMut(&StepMetrics)) -> Result<()> {
        Runner::default().run(self, |e| {
            if let Event::Step(m) = e {
                on_step(m)
            }
        })
    }
}
