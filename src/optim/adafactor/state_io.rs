//! Saving and restoring the GPU Adafactor's state as safetensors, bit for bit.
//!
//! File contents: `<state>.<tensor>` for each state tensor under timm's keys
//! (`exp_avg`, F32 or big_vision's BF16; `exp_avg_sq`; `exp_avg_sq_row` and
//! `exp_avg_sq_col`), flat, and `coptim.steps` (`I64[1]`, the completed steps). Metadata:
//! `format` = [`ADAFACTOR_STATE_FORMAT`], `config` (the rule and caution as JSON).
//! Restoring checks the format, the configuration and every tensor's name, dtype and
//! size before writing anything: a file that differs is rejected with
//! [`Error::Checkpoint`] and the optimizer is left unchanged.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::optim::adafactor::AdafactorOptimizer;
use crate::optim::state_io::checked_metadata;

/// The `format` metadata value of Adafactor state files.
pub const ADAFACTOR_STATE_FORMAT: &str = "coptim-adafactor-state/1";
/// The name of the steps entry.
const STEPS: &str = "coptim.steps";

impl AdafactorOptimizer {
    /// The configuration as the files record it.
    fn config_json(&self) -> String {
        serde_json::to_string(&self.config()).expect("the rule serializes")
    }

    /// Serializes the state to safetensors bytes (waits for the GPU).
    pub async fn state_bytes(&self) -> Result<Vec<u8>> {
        let mut blobs: Vec<(String, Dtype, Vec<u8>)> = Vec::new();
        for piece in self.pieces() {
            let read = piece.bytes.next_multiple_of(4);
            let mut bytes =
                crate::arena::read_buffer(self.ctx(), piece.buffer, piece.offset, read).await?;
            bytes.truncate(piece.bytes as usize);
            let dtype = if piece.bf16 { Dtype::BF16 } else { Dtype::F32 };
            blobs.push((piece.name, dtype, bytes));
        }
        let steps = [i64::from(self.read_completed_steps().await?)];
        blobs.push((
            STEPS.into(),
            Dtype::I64,
            bytemuck::cast_slice(&steps).to_vec(),
        ));
        let views = blobs
            .iter()
            .map(|(name, dtype, bytes)| {
                let len = bytes.len() * 8 / dtype.bitsize();
                TensorView::new(*dtype, vec![len], bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Gpu(format!("state tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([
            ("format".to_string(), ADAFACTOR_STATE_FORMAT.to_string()),
            ("config".to_string(), self.config_json()),
        ]);
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::Gpu(format!("serializing Adafactor's state: {e}")))
    }

    /// Restores state from bytes made by [`AdafactorOptimizer::state_bytes`];
    /// `source` names the file in errors. Everything is checked before anything is
    /// written; the writes are queued (they land before the next submitted step).
    pub fn load_state_bytes(&mut self, bytes: &[u8], source: &str) -> Result<()> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        checked_metadata(bytes, ADAFACTOR_STATE_FORMAT, &self.config_json()).map_err(bad)?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let pieces = self.pieces();
        if file.len() != pieces.len() + 1 {
            return Err(bad(format!(
                "{} tensors, expected {}",
                file.len(),
                pieces.len() + 1
            )));
        }
        let mut writes = Vec::with_capacity(pieces.len());
        for piece in &pieces {
            let view = file.tensor(&piece.name).map_err(|e| bad(e.to_string()))?;
            let dtype = if piece.bf16 { Dtype::BF16 } else { Dtype::F32 };
            if view.dtype() != dtype || view.data().len() as u64 != piece.bytes {
                return Err(bad(format!(
                    "{} is {:?} of {} bytes, expected {dtype:?} of {}",
                    piece.name,
                    view.dtype(),
                    view.data().len(),
                    piece.bytes
                )));
            }
            let mut data = view.data().to_vec();
            data.resize(piece.bytes.next_multiple_of(4) as usize, 0);
            writes.push((piece.buffer.clone(), piece.offset, data));
        }
        let steps = file.tensor(STEPS).map_err(|e| bad(e.to_string()))?;
        let steps: Vec<i64> = bytemuck::pod_collect_to_vec(steps.data());
        let steps = match steps.as_slice() {
            [s] => i32::try_from(*s).ok().filter(|s| *s >= 0),
            _ => None,
        }
        .ok_or_else(|| bad(format!("{STEPS} is not one step count")))?;
        for (buffer, offset, data) in writes {
            self.ctx().queue().write_buffer(&buffer, offset, &data);
        }
        self.set_steps(steps);
        Ok(())
    }
}
