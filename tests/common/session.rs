//! Stopping, checkpointing and resuming training sessions in the train tests.

use std::path::Path;

use coptim::GpuContext;
use coptim::train::{Session, TrainConfig, TrainData};

/// Runs a fresh session of `config` on `data` for `steps` steps, saves its
/// checkpoint to `path`, drops it and returns the session resumed from that file.
pub fn stop_and_resume(
    ctx: &GpuContext,
    config: TrainConfig,
    data: impl Into<TrainData> + Clone,
    steps: usize,
    path: &Path,
) -> Session {
    let mut first = Session::new(ctx, config, data.clone()).unwrap();
    for _ in 0..steps {
        first.step().unwrap();
    }
    first.save_checkpoint(path).unwrap();
    drop(first);
    Session::resume(ctx, data, path).unwrap()
}
