//! What one finished run measured, as the comparison and the sweep both report it.

use serde::{Deserialize, Serialize};

use crate::train::config::OptimizerKind;

/// What one run measured: which optimizer and seed ran, how its losses and accuracy
/// ended, how much the cautious mask kept and how long it took. The comparison's
/// [`RunResult`](crate::train::compare::RunResult) and the sweep's
/// [`RunRow`](crate::train::sweep::results::RunRow) embed it flattened: its fields
/// stand at the top level of their JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeasures {
    /// The optimizer's command-line name.
    pub optimizer: OptimizerKind,
    /// The seed.
    pub seed: u64,
    /// Mean training loss over the last 5% of the steps (`None`: no step, or a sweep
    /// run's non-finite loss).
    pub final_train_loss: Option<f64>,
    /// Test accuracy after the last step (text: next-token accuracy; `None`: no
    /// evaluation, or a sweep run's non-finite one).
    pub test_accuracy: Option<f64>,
    /// Test loss after the last step (text: nats per token; `None` as the accuracy).
    pub test_loss: Option<f64>,
    /// Validation loss after the last step. A comparison reports it for language
    /// models (nats per token, the test loss) and masked autoencoders, `None` for
    /// image classifiers; a sweep for every model, on its held-out validation split
    /// (`None`: diverged).
    pub val_loss: Option<f64>,
    /// Mean fraction of coordinates the cautious mask kept (1 without caution).
    pub mean_kept_fraction: Option<f64>,
    /// Seconds of wall time: a comparison counts the run's own steps and evaluations
    /// (other runs may have trained at the same time on other worker threads), a
    /// sweep the run's share of its concurrent group's.
    pub wall_s: f64,
}
