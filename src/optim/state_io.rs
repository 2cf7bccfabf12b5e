//! Saving and loading optimizer state as safetensors.
//!
//! File contents (all names documented, readable by any safetensors library):
//! - `<state>.<tensor>`: each state tensor, e.g. `exp_avg.fc1.weight`, with the
//!   parameter's shape and the state's dtype (`F32`, `BF16` or `F16`);
//! - `coptim.steps`: `I64[2]` = [completed steps, scheduled steps];
//! - `coptim.bias_correction`: `F32[groups, 2]` = (1 - beta1^t, 1 - beta2^t) per group,
//!   as the GPU holds them (so a resumed run continues bit for bit);
//! - `coptim.lr_ema`: `F32[groups]` = the beta1-EMA of each group's learning rate
//!   (LaProp's first-moment correction), as the GPU holds it. Files written before it
//!   existed (AdamW, Lion and SGD state, which do not use it) load with 0;
//! - `coptim.bias_correction3`: `F32[groups]` = 1 - beta3^t per group (Adan's third
//!   moment), as the GPU holds it.
//!   Files written before it existed load with 0.
//!
//! Metadata: `format` = `coptim-optimizer-state/1`, `config` (the
//! [`OptimizerConfig`](crate::optim::OptimizerConfig) as JSON), `tensors` (JSON list of
//! `[name, shape]`). Loading checks everything before writing anything: a file whose
//! format, config, tensor names, shapes or dtypes differ is rejected with
//! [`Error::Checkpoint`] and the optimizer is left unchanged.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::arena::{ElementType, TensorId};
use crate::error::{Error, Result};
use crate::optim::config::OptimizerConfig;
use crate::optim::gpu_types::GpuStatus;
use crate::optim::kernels::MAX_GROUPS;
use crate::optim::runtime::Optimizer;

/// The `format` metadata value of optimizer state files.
pub const STATE_FORMAT: &str = "coptim-optimizer-state/1";

fn dtype_of(e: ElementType) -> Dtype {
    match e {
        ElementType::F32 => Dtype::F32,
        ElementType::Bf16 => Dtype::BF16,
        ElementType::F16 => Dtype::F16,
    }
}

impl Optimizer {
    /// Serializes the optimizer state to safetensors bytes (waits for the GPU).
    pub async fn state_bytes(&self) -> Result<Vec<u8>> {
        let ctx = self.ctx();
        let layout = self.params().state_layout().clone();
        let names = self.config().algorithm.state_names();
        let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (k, arena) in self.state().iter().enumerate() {
            for (i, info) in layout.tensors().iter().enumerate() {
                let bytes = arena.read_bytes(ctx, TensorId(i)).await?;
                blobs.push((
                    format!("{}.{}", names[k], info.name),
                    dtype_of(arena.dtype()),
                    info.shape.clone(),
                    bytes,
                ));
            }
        }
        let status_bytes = crate::arena::read_buffer(
            ctx,
            self.status_buffer(),
            0,
            std::mem::size_of::<GpuStatus>() as u64,
        )
        .await?;
        let status: GpuStatus = bytemuck::pod_read_unaligned(&status_bytes);
        let steps = [status.step as i64, self.scheduled_steps() as i64];
        blobs.push((
            "coptim.steps".into(),
            Dtype::I64,
            vec![2],
            bytemuck::cast_slice(&steps).to_vec(),
        ));
        let groups = self.config().groups.len() + 1;
        let bias: Vec<f32> = status.bias[..groups]
            .iter()
            .flat_map(|b| [b[0], b[1]])
            .collect();
        blobs.push((
            "coptim.bias_correction".into(),
            Dtype::F32,
            vec![groups, 2],
            bytemuck::cast_slice(&bias).to_vec(),
        ));
        for extra in &GROUP_EXTRAS {
            let values: Vec<f32> = status.bias[..groups]
                .iter()
                .map(|b| b[extra.lane])
                .collect();
            blobs.push((
                extra.name.into(),
                Dtype::F32,
                vec![groups],
                bytemuck::cast_slice(&values).to_vec(),
            ));
        }
        let views = blobs
            .iter()
            .map(|(n, d, s, b)| {
                TensorView::new(*d, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Gpu(format!("state tensor {n}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), STATE_FORMAT.to_string());
        metadata.insert("config".to_string(), config_json(self.config()));
        let tensors: Vec<(&str, &Vec<usize>)> = layout
            .tensors()
            .iter()
            .map(|t| (t.name.as_str(), &t.shape))
            .collect();
        metadata.insert(
            "tensors".to_string(),
            serde_json::to_string(&tensors).expect("names serialize"),
        );
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::Gpu(format!("serializing state: {e}")))
    }

    /// Restores state from bytes made by [`Optimizer::state_bytes`]; `source` names
    /// the file in errors. Everything is checked before anything is written.
    pub fn load_state_bytes(&mut self, bytes: &[u8], source: &str) -> Result<()> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        self.check_state_metadata(bytes, source)?;
        let writes = self.checked_state_tensors(&st, source)?;
        let groups = self.config().groups.len() + 1;
        let (steps, bias) = read_step_counters(&st, groups, source)?;
        let extras = GROUP_EXTRAS
            .iter()
            .map(|extra| extra.read(&st, groups, source))
            .collect::<Result<Vec<_>>>()?;
        // Everything checked: now write.
        for (k, i, data) in writes {
            self.state()[k].write_bytes(self.ctx(), TensorId(i), data)?;
        }
        let mut status = GpuStatus {
            found_inf: 0,
            step: steps[0] as u32,
            clip_coef: 1.0,
            grad_norm: 0.0,
            bias: [[0.0; 4]; MAX_GROUPS],
        };
        for g in 0..groups {
            status.bias[g][..2].copy_from_slice(&bias[2 * g..2 * g + 2]);
            for (extra, values) in GROUP_EXTRAS.iter().zip(&extras) {
                status.bias[g][extra.lane] = values[g];
            }
        }
        self.ctx()
            .queue()
            .write_buffer(self.status_buffer(), 0, bytemuck::bytes_of(&status));
        self.set_scheduled(steps[1] as u64);
        Ok(())
    }

    /// Checks that the file's metadata names the state format and this optimizer's config.
    fn check_state_metadata(&self, bytes: &[u8], source: &str) -> Result<()> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = metadata.metadata().clone().unwrap_or_default();
        match meta.get("format") {
            Some(f) if f == STATE_FORMAT => {}
            other => return Err(bad(format!("format is {other:?}, expected {STATE_FORMAT}"))),
        }
        let saved: OptimizerConfig =
            serde_json::from_str(meta.get("config").map(String::as_str).unwrap_or(""))
                .map_err(|e| bad(format!("unreadable config: {e}")))?;
        if config_json(&saved) != config_json(self.config()) {
            return Err(bad(format!(
                "optimizer config differs: file has {}, this optimizer has {}",
                config_json(&saved),
                config_json(self.config())
            )));
        }
        Ok(())
    }

    /// Checks every state tensor (presence, dtype, shape, values) and the tensor
    /// count; gives the `(state index, tensor index, bytes)` to write.
    fn checked_state_tensors<'a>(
        &self,
        st: &SafeTensors<'a>,
        source: &str,
    ) -> Result<Vec<(usize, usize, &'a [u8])>> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        let layout = self.params().state_layout().clone();
        let names = self.config().algorithm.state_names();
        let mut writes = Vec::new();
        for (k, arena) in self.state().iter().enumerate() {
            for (i, info) in layout.tensors().iter().enumerate() {
                let name = format!("{}.{}", names[k], info.name);
                let view = st
                    .tensor(&name)
                    .map_err(|_| bad(format!("missing tensor `{name}`")))?;
                if view.dtype() != dtype_of(arena.dtype()) || view.shape() != info.shape.as_slice()
                {
                    return Err(bad(format!(
                        "tensor `{name}` is {:?} {:?}, expected {:?} {:?}",
                        view.dtype(),
                        view.shape(),
                        dtype_of(arena.dtype()),
                        info.shape
                    )));
                }
                check_values(&name, arena.dtype(), view.data(), names[k] == SECOND_MOMENT)
                    .map_err(bad)?;
                writes.push((k, i, view.data()));
            }
        }
        // The state tensors, the step counters, the bias corrections and (in files
        // written since they exist) the per-group extras.
        let extras = GROUP_EXTRAS
            .iter()
            .filter(|extra| st.tensor(extra.name).is_ok())
            .count();
        let expected = names.len() * layout.num_tensors() + 2 + extras;
        if st.len() != expected {
            return Err(bad(format!(
                "holds {} tensors, expected {expected}",
                st.len()
            )));
        }
        Ok(writes)
    }

    /// Saves the state to a safetensors file, atomically (temporary file + rename).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_state(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let bytes = pollster::block_on(self.state_bytes())?;
        crate::file_io::write_atomic(path.as_ref(), &bytes)
    }

    /// Loads state saved by [`Optimizer::save_state`]; on any mismatch returns
    /// [`Error::Checkpoint`] and changes nothing.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_state(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::file_io::read_file(path)?;
        self.load_state_bytes(&bytes, &path.display().to_string())
    }
}

/// A per-group value of the GPU status besides the two bias corrections, saved as
/// `F32[groups]` (files written before it existed load with 0).
struct GroupExtra {
    /// The tensor's name in the file.
    name: &'static str,
    /// Its lane of the group's `bias` vec4 in the GPU status.
    lane: usize,
    /// The largest valid value (every value is finite and >= 0).
    max: f32,
}

/// The learning-rate EMA (LaProp) and the third bias correction (Adan).
const GROUP_EXTRAS: [GroupExtra; 2] = [
    GroupExtra {
        name: "coptim.lr_ema",
        lane: 2,
        max: f32::MAX,
    },
    GroupExtra {
        name: "coptim.bias_correction3",
        lane: 3,
        max: 1.0,
    },
];

impl GroupExtra {
    /// Reads and checks the `[groups]` values of a state file (zeros when absent).
    fn read(&self, st: &SafeTensors<'_>, groups: usize, source: &str) -> Result<Vec<f32>> {
        let name = self.name;
        let Ok(view) = st.tensor(name) else {
            return Ok(vec![0.0; groups]);
        };
        if view.dtype() != Dtype::F32 || view.shape() != [groups] {
            return Err(Error::checkpoint(
                source,
                format!("`{name}` must be F32[{groups}]"),
            ));
        }
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
        if values.iter().any(|x| !(0.0..=self.max).contains(x)) {
            return Err(Error::checkpoint(
                source,
                format!("`{name}` holds {values:?}, outside [0, {}]", self.max),
            ));
        }
        Ok(values)
    }
}

/// Reads and checks the step counters `[completed, scheduled]` and the
/// `[groups, 2]` bias corrections of a state file.
fn read_step_counters(
    st: &SafeTensors<'_>,
    groups: usize,
    source: &str,
) -> Result<(Vec<i64>, Vec<f32>)> {
    let bad = |reason: String| Error::checkpoint(source, reason);
    let steps = st
        .tensor("coptim.steps")
        .map_err(|_| bad("missing `coptim.steps`".into()))?;
    if steps.dtype() != Dtype::I64 || steps.shape() != [2] {
        return Err(bad("`coptim.steps` must be I64[2]".into()));
    }
    let steps: Vec<i64> = bytemuck::pod_collect_to_vec(steps.data());
    let bias = st
        .tensor("coptim.bias_correction")
        .map_err(|_| bad("missing `coptim.bias_correction`".into()))?;
    if bias.dtype() != Dtype::F32 || bias.shape() != [groups, 2] {
        return Err(bad(format!(
            "`coptim.bias_correction` must be F32[{groups}, 2]"
        )));
    }
    let bias: Vec<f32> = bytemuck::pod_collect_to_vec(bias.data());
    if bias.iter().any(|b| !(0.0..=1.0).contains(b)) {
        return Err(bad(format!(
            "`coptim.bias_correction` holds {bias:?}, outside [0, 1]"
        )));
    }
    if steps.iter().any(|&s| s < 0) || steps[0] > u32::MAX as i64 || steps[0] > steps[1] {
        return Err(bad(format!("invalid step counts {steps:?}")));
    }
    Ok((steps, bias))
}

/// Reads the metadata of a state file and checks its `format` and `config` entries
/// against what this optimizer writes; returns the metadata (the caller reads its
/// other entries). Errors are reasons, for [`Error::checkpoint`].
pub(crate) fn checked_metadata(
    bytes: &[u8],
    format: &str,
    config_json: &str,
) -> std::result::Result<HashMap<String, String>, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |key: &str| meta.get(key).map(String::as_str).unwrap_or("");
    if get("format") != format {
        return Err(format!("format `{}` is not {format}", get("format")));
    }
    if get("config") != config_json {
        return Err(format!(
            "it was saved by `{}`, not by this optimizer's `{config_json}`",
            get("config")
        ));
    }
    Ok(meta)
}

/// The state holding AdamW's second moment, which is never negative.
const SECOND_MOMENT: &str = "exp_avg_sq";

/// Checks that the state tensor `name` (raw little-endian `dtype` bytes) is finite
/// and, when `non_negative`, has no negative value: a file that holds NaN moments
/// would load and silently train to NaN weights.
pub(crate) fn check_values(
    name: &str,
    dtype: ElementType,
    bytes: &[u8],
    non_negative: bool,
) -> std::result::Result<(), String> {
    let value = |chunk: &[u8]| match dtype {
        ElementType::F32 => f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
        ElementType::Bf16 => half::bf16::from_le_bytes([chunk[0], chunk[1]]).to_f32(),
        ElementType::F16 => half::f16::from_le_bytes([chunk[0], chunk[1]]).to_f32(),
    };
    let width = dtype.bytes() as usize;
    for (i, chunk) in bytes.chunks_exact(width).enumerate() {
        let v = value(chunk);
        if !v.is_finite() {
            return Err(format!("tensor `{name}` holds {v} at element {i}"));
        }
        if non_negative && v < 0.0 {
            return Err(format!(
                "tensor `{name}` holds the negative second moment {v} at element {i}"
            ));
        }
    }
    Ok(())
}

fn config_json(config: &OptimizerConfig) -> String {
    serde_json::to_string(config).expect("config serializes")
}
