//! Saving and restoring the GPU Muon's state as safetensors, bit for bit.
//!
//! File contents: `momentum.<tensor>` (F32, flat) for each matrix Muon orthogonalizes,
//! and the fallback AdamW's state file ([`crate::Optimizer::state_bytes`]) with every tensor
//! under `fallback.<key>` and its metadata under `fallback.<key>` (its step counters
//! included). Metadata: `format` = [`MUON_STATE_FORMAT`], `config` (Muon's
//! hyperparameters, the caution and the weight decay as JSON). Restoring checks the
//! format, the configuration, every tensor's name, dtype, size and finiteness, and the
//! fallback's file before writing anything: a file that differs is rejected with
//! [`Error::Checkpoint`] and the optimizer is left unchanged.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::arena::ElementType;
use crate::error::{Error, Result};
use crate::optim::muon::MuonOptimizer;
use crate::optim::state_io::{check_values, checked_metadata};

/// The `format` metadata value of Muon state files.
pub const MUON_STATE_FORMAT: &str = "coptim-muon-state/1";
/// The prefix of the fallback AdamW's tensors and metadata.
const FALLBACK: &str = "fallback.";
/// The prefix of the momentum buffers.
const MOMENTUM: &str = "momentum.";

/// Bytes of one f32.
const WORD: u64 = 4;

impl MuonOptimizer {
    fn config_json(&self) -> String {
        serde_json::to_string(&self.settings()).expect("the settings serialize")
    }

    /// `(name, tensor index)` of every momentum buffer, in tensor order.
    fn momentum_names(&self) -> Vec<(String, usize)> {
        let tensors = self.params().tensors();
        (0..tensors.len())
            .filter(|&i| self.momentum(i).is_some())
            .map(|i| (format!("{MOMENTUM}{}", tensors[i].name), i))
            .collect()
    }

    /// Serializes the state to safetensors bytes (waits for the GPU).
    pub async fn state_bytes(&self) -> Result<Vec<u8>> {
        let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, i) in self.momentum_names() {
            let m = self.momentum(i).expect("listed");
            let bytes = crate::arena::read_buffer(self.ctx(), m.buffer(), 0, m.byte_size()).await?;
            blobs.push((name, Dtype::F32, vec![m.len()], bytes));
        }
        let mut metadata = HashMap::from([
            ("format".to_string(), MUON_STATE_FORMAT.to_string()),
            ("config".to_string(), self.config_json()),
        ]);
        let fallback = match self.fallback() {
            Some(f) => f.state_bytes().await?,
            None => Vec::new(),
        };
        if !fallback.is_empty() {
            let file = SafeTensors::deserialize(&fallback).map_err(serialize_error)?;
            for (name, view) in file.tensors() {
                let (dtype, shape) = (view.dtype(), view.shape().to_vec());
                blobs.push((
                    format!("{FALLBACK}{name}"),
                    dtype,
                    shape,
                    view.data().to_vec(),
                ));
            }
            let (_, meta) = SafeTensors::read_metadata(&fallback).map_err(serialize_error)?;
            for (k, v) in meta.metadata().clone().unwrap_or_default() {
                metadata.insert(format!("{FALLBACK}{k}"), v);
            }
        }
        let views = blobs
            .iter()
            .map(|(n, d, s, b)| {
                TensorView::new(*d, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(serialize_error)
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(metadata)).map_err(serialize_error)
    }

    /// Restores state from bytes made by [`MuonOptimizer::state_bytes`]; `source`
    /// names the file in errors. Everything is checked before anything is written;
    /// the writes are queued (they land before the next submitted step).
    pub fn load_state_bytes(&mut self, bytes: &[u8], source: &str) -> Result<()> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        let meta = checked_metadata(bytes, MUON_STATE_FORMAT, &self.config_json()).map_err(bad)?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let writes = self.momentum_writes(&file).map_err(bad)?;
        let fallback = fallback_file(&file, &meta).map_err(bad)?;
        match (self.fallback_mut(), fallback) {
            (Some(f), Some(fallback)) => f.load_state_bytes(&fallback, source)?,
            (None, None) => {}
            (has, _) => {
                return Err(bad(format!(
                    "the file {} a fallback AdamW state, this optimizer {} one",
                    if has.is_some() { "lacks" } else { "has" },
                    if has.is_some() { "has" } else { "has no" }
                )));
            }
        }
        for (i, data) in writes {
            let m = self.momentum(i).expect("checked");
            self.ctx()
                .queue()
                .write_buffer(m.buffer(), m.offset(), &data);
        }
        Ok(())
    }

    /// The checked contents of every momentum buffer in `file`: `(tensor, bytes)`.
    fn momentum_writes(
        &self,
        file: &SafeTensors<'_>,
    ) -> std::result::Result<Vec<(usize, Vec<u8>)>, String> {
        let names = self.momentum_names();
        let own = file
            .names()
            .iter()
            .filter(|n| !n.starts_with(FALLBACK))
            .count();
        if own != names.len() {
            return Err(format!("{own} momentum tensors, expected {}", names.len()));
        }
        names
            .into_iter()
            .map(|(name, i)| {
                let view = file.tensor(&name).map_err(|e| e.to_string())?;
                let want = self.momentum(i).expect("listed").len() as u64 * WORD;
                if view.dtype() != Dtype::F32 || view.data().len() as u64 != want {
                    return Err(format!(
                        "{name} is {:?} of {} bytes, expected F32 of {want}",
                        view.dtype(),
                        view.data().len()
                    ));
                }
                check_values(&name, ElementType::F32, view.data(), false)?;
                Ok((i, view.data().to_vec()))
            })
            .collect()
    }
}

/// The fallback's own state file rebuilt from `file`'s `fallback.` entries, if any.
fn fallback_file(
    file: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let tensors: Vec<(String, TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter_map(|(name, view)| name.strip_prefix(FALLBACK).map(|n| (n.to_string(), view)))
        .collect();
    if tensors.is_empty() {
        return Ok(None);
    }
    let own_meta: HashMap<String, String> = meta
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(FALLBACK).map(|k| (k.to_string(), v.clone())))
        .collect();
    safetensors::serialize(tensors, Some(own_meta))
        .map(Some)
        .map_err(|e| e.to_string())
}

fn serialize_error(e: impl std::fmt::Display) -> Error {
    Error::Gpu(format!("serializing Muon's state: {e}"))
}
