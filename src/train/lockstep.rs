//! [`Lockstep`]: the one driver that steps N training sessions together, step `k` of
//! every run before step `k + 1` of any. `coptim compare` (each seed's pair), the
//! [`Runner`](crate::train::Runner) (one run) and the browser page (its pair) all
//! step their sessions through it. Runs built from configurations that differ only
//! in the optimizer start from the same weights and see the same batches.

use std::borrow::BorrowMut;

use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::train::clock::now_ms;
#[cfg(not(target_arch = "wasm32"))]
use crate::train::metrics::EvalMetrics;
use crate::train::metrics::StepMetrics;
use crate::train::session::Session;

/// N sessions stepped in lockstep. `S` is [`Session`] (owned runs) or
/// `&mut Session` (borrowed ones).
#[derive(Debug)]
pub struct Lockstep<S = Session> {
    runs: Vec<S>,
    /// Milliseconds spent stepping, waiting for and evaluating each run (natively).
    busy_ms: Vec<f64>,
}

impl<S: BorrowMut<Session>> Lockstep<S> {
    /// Drives `runs` (at least one).
    pub fn new(runs: Vec<S>) -> Result<Self> {
        if runs.is_empty() {
            return Err(Error::InvalidConfig(
                "lockstep training needs at least one run".into(),
            ));
        }
        let busy_ms = vec![0.0; runs.len()];
        Ok(Self { runs, busy_ms })
    }

    /// The number of runs.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Always false: a lockstep holds at least one run.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Run `index`.
    pub fn run(&self, index: usize) -> &Session {
        self.runs[index].borrow()
    }

    /// Run `index`, mutably (e.g. to evaluate or predict with it).
    pub fn run_mut(&mut self, index: usize) -> &mut Session {
        self.runs[index].borrow_mut()
    }

    /// Every run, in order.
    pub fn runs(&self) -> impl Iterator<Item = &Session> {
        self.runs.iter().map(|s| s.borrow())
    }

    /// Seconds [`Lockstep::step_and_wait`] and [`Lockstep::evaluate_due`] spent on
    /// run `index` alone (0 in the browser, where steps are not waited for one by one).
    pub fn busy_s(&self, index: usize) -> f64 {
        self.busy_ms[index] / 1e3
    }

    /// The runs, handed back.
    pub fn into_runs(self) -> Vec<S> {
        self.runs
    }

    /// Whether every run has submitted its whole budget.
    pub fn is_finished(&self) -> bool {
        self.runs().all(Session::is_finished)
    }

    /// Steps submitted by all runs whose metrics have not been read back yet.
    pub fn in_flight(&self) -> usize {
        self.runs().map(Session::in_flight).sum()
    }

    /// Records and submits the next step of every unfinished run, in run order,
    /// without waiting for the GPU.
    pub fn step(&mut self) -> Result<()> {
        for run in &mut self.runs {
            let run = run.borrow_mut();
            if !run.is_finished() {
                run.step()?;
            }
        }
        Ok(())
    }

    /// The metrics each run's finished steps reported since the last call, one list
    /// per run, without waiting (see [`Session::poll`]).
    pub fn poll(&mut self) -> Result<Vec<Vec<StepMetrics>>> {
        self.runs
            .iter_mut()
            .map(|r| r.borrow_mut().poll())
            .collect()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl<S: BorrowMut<Session>> Lockstep<S> {
    /// Natively: submits the next step of every unfinished run and waits for each
    /// before submitting the next, so every step has its kept fraction and a step
    /// time of its own run alone. Returns the metrics, one list per run.
    pub fn step_and_wait(&mut self) -> Result<Vec<Vec<StepMetrics>>> {
        let mut out = Vec::with_capacity(self.runs.len());
        for (run, busy) in self.runs.iter_mut().zip(&mut self.busy_ms) {
            let run = run.borrow_mut();
            if run.is_finished() {
                out.push(Vec::new());
                continue;
            }
            let started = now_ms();
            run.step()?;
            out.push(run.wait()?);
            *busy += now_ms() - started;
        }
        Ok(out)
    }

    /// Evaluates every run whose [`Session::wants_eval`] says so, blocking; returns
    /// `(run index, metrics)` for each.
    pub fn evaluate_due(&mut self) -> Result<Vec<(usize, EvalMetrics)>> {
        let mut out = Vec::new();
        for (index, (run, busy)) in self.runs.iter_mut().zip(&mut self.busy_ms).enumerate() {
            let run = run.borrow_mut();
            if run.wants_eval() {
                let started = now_ms();
                out.push((index, run.evaluate_blocking()?));
                *busy += now_ms() - started;
            }
        }
        Ok(out)
    }
}
