//! A recorded batch's loss and correct count: where they are on the GPU
//! ([`BatchOutputs`]) and what they were ([`BatchMetrics`]).
//!
//! The model reads nothing back itself. A training step hands the two values to the
//! optimizer with [`BatchOutputs::step_inputs`], so they arrive in the optimizer's one
//! record of the step ([`StepStats`]), in step order and never dropped.

use crate::arena::{BufferView, read_buffer};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::{StepInputs, StepStats};

/// Bytes of one value (the loss and the correct count are one f32 each).
const VALUE_BYTES: u64 = 4;

/// The loss and accuracy of one recorded batch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BatchMetrics {
    /// Mean softmax cross-entropy over the batch.
    pub loss: f32,
    /// Labels whose highest logit is at the label.
    pub correct: u32,
    /// Labels in the batch: samples, or tokens for a language model.
    pub batch_size: usize,
}

impl BatchMetrics {
    /// `correct / batch_size`.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.batch_size.max(1) as f64
    }

    /// The metrics a step's record carries when its inputs came from
    /// [`BatchOutputs::step_inputs`] for a batch of `batch_size` labels. Fails with
    /// [`Error::Readback`] if the record holds no loss and correct count.
    pub fn from_record(record: &StepStats, batch_size: usize) -> Result<Self> {
        match (record.loss, record.values.as_slice()) {
            (Some(loss), [correct]) => Ok(Self {
                loss,
                correct: *correct as u32,
                batch_size,
            }),
            // A model that does not classify carries its loss alone.
            (Some(loss), []) => Ok(Self {
                loss,
                correct: 0,
                batch_size,
            }),
            _ => Err(Error::Readback(format!(
                "the record of step {} holds no batch loss and correct count",
                record.scheduled_step
            ))),
        }
    }
}

/// Where a recorded batch's loss and correct count (one f32 each) are once the
/// encoder runs. They stay there until the next batch of the same size is recorded.
#[derive(Debug, Clone)]
pub struct BatchOutputs {
    /// Labels in the batch: samples, or tokens for a language model.
    pub batch_size: usize,
    /// The mean softmax cross-entropy.
    pub loss: BufferView,
    /// The number of samples classified correctly (an f32); `None` for a model that
    /// does not classify.
    pub correct: Option<BufferView>,
}

impl BatchOutputs {
    /// `inputs` that also copy this batch's loss and correct count into the
    /// optimizer's record of the step (read them with [`BatchMetrics::from_record`]).
    pub fn step_inputs<'a>(&'a self, inputs: StepInputs<'a>) -> StepInputs<'a> {
        let inputs = inputs.with_loss(&self.loss.buffer, self.loss.offset);
        match &self.correct {
            Some(c) => inputs.with_value(&c.buffer, c.offset),
            None => inputs,
        }
    }

    /// Reads the two values now with the crate's one blocking read helper (submits
    /// and waits): for programs that step the model without an optimizer record.
    pub async fn read(&self, ctx: &GpuContext) -> Result<BatchMetrics> {
        let loss = &self.loss;
        let loss = read_buffer(ctx, &loss.buffer, loss.offset, VALUE_BYTES).await?;
        let loss: f32 = bytemuck::pod_read_unaligned(&loss);
        let correct: f32 = match &self.correct {
            Some(c) => {
                let bytes = read_buffer(ctx, &c.buffer, c.offset, VALUE_BYTES).await?;
                bytemuck::pod_read_unaligned(&bytes)
            }
            None => 0.0,
        };
        Ok(BatchMetrics {
            loss,
            correct: correct as u32,
            batch_size: self.batch_size,
        })
    }
}
