//! What a comparison or a sweep of a plain optimizer and its cautious twin ran: the
//! head of both summaries.

use serde::Serialize;

use crate::train::config::{OptimizerKind, TrainConfig};

/// The model, data, budget, optimizer pair and seeds of a comparison or a sweep. The
/// comparison's [`Summary`](crate::train::compare::Summary) and the sweep's
/// [`SweepSummary`](crate::train::sweep::SweepSummary) embed it flattened: its fields
/// stand at the top level of `summary.json` and `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairSetup {
    /// The model's name (`mlp`, `vit`, `llama`, `mae`).
    pub model: String,
    /// The data set's name.
    pub dataset: String,
    /// Training steps per run.
    pub steps: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// `[base, cautious]`.
    pub pair: [OptimizerKind; 2],
    /// The seeds.
    pub seeds: Vec<u64>,
}

impl PairSetup {
    /// Runs of `run`'s model and budget on `dataset`, of `pair` over `seeds`.
    pub fn new(run: &TrainConfig, dataset: &str, pair: [OptimizerKind; 2], seeds: &[u64]) -> Self {
        Self {
            model: run.model.name().to_string(),
            dataset: dataset.to_string(),
            steps: run.steps,
            batch_size: run.batch_size,
            pair,
            seeds: seeds.to_vec(),
        }
    }

    /// `adamw vs c-adamw: mlp on mnist, 500 steps of 128`, the head of the charts'
    /// titles.
    pub fn headline(&self) -> String {
        format!(
            "{} vs {}: {} on {}, {} steps of {}",
            self.pair[0], self.pair[1], self.model, self.dataset, self.steps, self.batch_size
        )
    }
}
