//! The runs of a comparison trained on worker threads, one per GPU context: each
//! worker takes the next untrained run, trains it to the end on its own device and
//! reports its steps to the comparing thread, which alone calls the observer. A run
//! depends only on its configuration (its seed fixes the initialization and the
//! batches), so the results do not depend on how many workers there are or which
//! one trained which run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::context::GpuContext;
use crate::error::Result;
use crate::train::compare::{CompareConfig, CompareEvent, ProbeData};
use crate::train::lockstep::Lockstep;
use crate::train::metrics::{History, StepMetrics};
use crate::train::runner::{Event, Runner};
use crate::train::session::Session;
use crate::train::source::TrainData;

/// One trained run, as its worker hands it back.
#[derive(Debug)]
pub(super) struct Trained {
    /// Every step's and evaluation's metrics.
    pub history: History,
    /// Seconds spent on the run's own steps and evaluations.
    pub busy_s: f64,
    /// The model's number of parameters.
    pub parameters: u64,
    /// The linear probe's test accuracy, when the comparison probes.
    pub probe: Option<f64>,
    /// The session itself for the runs of the first seed (the reconstructions
    /// picture shows them); `None` for the others.
    pub session: Option<Session>,
}

/// What a worker tells the comparing thread.
enum Report {
    /// Run `index` is starting.
    Started(usize),
    /// Run `index` finished a step.
    Step(usize, StepMetrics),
    /// Run `index` ended.
    Done(usize, Box<Result<Trained>>),
}

/// What every worker shares.
struct Shared<'a> {
    data: &'a TrainData,
    config: &'a CompareConfig,
    probe: Option<&'a ProbeData>,
    /// The next run nobody has taken yet.
    next: AtomicUsize,
    /// Set when a run failed: the others stop at their next step.
    stop: Arc<AtomicBool>,
}

/// Trains every run of `config` (in [`CompareConfig::runs`] order) on one worker
/// thread per context (no more workers than runs) and returns them in that order.
/// `observe` sees every run's start, steps and end on the calling thread. The first
/// failure stops the other runs at their next step and is returned.
pub(super) fn train_runs(
    contexts: &[GpuContext],
    data: &TrainData,
    config: &CompareConfig,
    probe: Option<&ProbeData>,
    observe: impl FnMut(CompareEvent<'_>),
) -> Result<Vec<Trained>> {
    let shared = Shared {
        data,
        config,
        probe,
        next: AtomicUsize::new(0),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let runs = config.runs().len();
    let (sender, receiver) = channel();
    std::thread::scope(|scope| {
        for ctx in contexts.iter().take(runs) {
            let (shared, sender) = (&shared, sender.clone());
            scope.spawn(move || work(ctx, shared, &sender));
        }
        drop(sender);
        collect(receiver, runs, &shared.stop, observe)
    })
}

/// One worker: takes runs until none is left or one failed.
fn work(ctx: &GpuContext, shared: &Shared<'_>, sender: &Sender<Report>) {
    let runs = shared.config.runs();
    while !shared.stop.load(Ordering::Relaxed) {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= runs.len() {
            return;
        }
        // A send fails only once the comparing thread stopped listening.
        let _ = sender.send(Report::Started(index));
        let trained = train_one(ctx, shared, index, sender);
        let _ = sender.send(Report::Done(index, Box::new(trained)));
    }
}

/// Trains run `index` on `ctx`, sending its steps, then probes it if asked.
fn train_one(
    ctx: &GpuContext,
    shared: &Shared<'_>,
    index: usize,
    sender: &Sender<Report>,
) -> Result<Trained> {
    let (optimizer, seed) = shared.config.runs()[index];
    let run = shared.config.run_config(optimizer, seed);
    let session = Session::new(ctx, run, shared.data.clone())?;
    let parameters = session.model().num_parameters();
    let mut lockstep = Lockstep::new(vec![session])?;
    let runner = Runner {
        stop: Some(shared.stop.clone()),
        ..Runner::default()
    };
    runner.run_lockstep(&mut lockstep, |_, e| {
        if let Event::Step(metrics) = e {
            let _ = sender.send(Report::Step(index, *metrics));
        }
    })?;
    let busy_s = lockstep.busy_s(0);
    let session = lockstep.into_runs().pop().expect("a lockstep of one run");
    let probe = shared.probe.map(|p| p.accuracy(&session)).transpose()?;
    let first_seed = shared.config.seeds.first() == Some(&seed);
    Ok(Trained {
        history: session.history().clone(),
        busy_s,
        parameters,
        probe,
        session: first_seed.then_some(session),
    })
}

/// Passes the workers' reports to `observe` until every worker has ended; returns
/// the runs in order, or the first failure (after which `stop` is set).
fn collect(
    receiver: Receiver<Report>,
    runs: usize,
    stop: &AtomicBool,
    mut observe: impl FnMut(CompareEvent<'_>),
) -> Result<Vec<Trained>> {
    let mut done: Vec<Option<Trained>> = (0..runs).map(|_| None).collect();
    let mut failure = None;
    for report in receiver {
        match report {
            Report::Started(index) => observe(CompareEvent::Started { index }),
            Report::Step(index, metrics) => observe(CompareEvent::Step {
                index,
                metrics: &metrics,
            }),
            Report::Done(index, trained) => match *trained {
                Ok(trained) if failure.is_none() => {
                    let eval = trained.history.last_eval();
                    observe(CompareEvent::Finished {
                        index,
                        test_accuracy: eval.map_or(0.0, |e| e.accuracy),
                        test_loss: eval.map_or(f64::NAN, |e| e.loss),
                    });
                    done[index] = Some(trained);
                }
                Ok(_) => {}
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            },
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(done
            .into_iter()
            .map(|t| t.expect("every run was trained"))
            .collect()),
    }
}
