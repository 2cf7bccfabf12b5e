//! Checkpoints of a training run: the model's parameters, the optimizer's state, the
//! step count, the configuration and the metrics history, in one safetensors file
//! (so one atomic write gives one consistent checkpoint).
//!
//! Contents, readable by any safetensors library:
//! - `param.<name>`: every parameter (f32, PyTorch state-dict names and shapes);
//! - `optimizer.<key>`: the tensors of the optimizer's state file
//!   ([`Optimizer::state_bytes`](crate::Optimizer::state_bytes), e.g.
//!   `optimizer.exp_avg.fc1.weight`, `optimizer.coptim.steps`);
//! - metadata `format` = [`CHECKPOINT_FORMAT`], `config` (the [`TrainConfig`] as
//!   JSON), `step` (steps completed), `history` (the [`History`] as JSON), `dataset`
//!   (the [`TrainData::fingerprint`] of the run's data, 16 hex digits), for a text
//!   run `vocab` (its [`Vocab`] as JSON), and the optimizer file's metadata under
//!   `optimizer.<key>`.
//!
//! Loading rejects a file whose parameters or optimizer moments are not finite, whose
//! second moments are negative, whose vocabulary is not the text's (naming the
//! characters in one and not the other), or whose data fingerprint differs from the
//! data given.
//!
//! A resumed session continues exactly: the batch stream and the augmentation are
//! functions of the seed and the step, and the optimizer state includes its step
//! counters and bias corrections.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::context::GpuContext;
use crate::data::text::Vocab;
use crate::error::{Error, Result};
use crate::model::{NamedTensor, ParamSpec};
use crate::train::config::TrainConfig;
use crate::train::metrics::History;
use crate::train::session::Session;
use crate::train::source::TrainData;

/// The `format` metadata value of training checkpoints.
pub const CHECKPOINT_FORMAT: &str = "coptim-train-checkpoint/2";

/// The metadata key of a text run's vocabulary.
const VOCAB: &str = "vocab";

const PARAM: &str = "param.";
const OPTIM: &str = "optimizer.";

fn serialize_error(e: safetensors::SafeTensorError) -> Error {
    Error::InvalidConfig(format!("serializing a checkpoint: {e}"))
}

impl Session {
    /// Serializes the run (parameters, optimizer state, step, configuration and
    /// history) as safetensors bytes. Waits for the GPU (async); every submitted
    /// step's metrics must have been read back by then. Refuses after a non-finite
    /// loss, so the last good checkpoint is never overwritten by a diverged state.
    pub async fn checkpoint_bytes(&mut self) -> Result<Vec<u8>> {
        if let Some((step, loss)) = self.failure() {
            return Err(Error::NonFiniteLoss { step, loss });
        }
        let params = self.model().read_parameters().await?;
        self.check_finite(&params)?;
        let optim = self.optimizer().state_bytes().await?;
        self.poll()?;
        if self.in_flight() > 0 {
            return Err(Error::Readback(format!(
                "{} steps are still in flight; poll until none is",
                self.in_flight()
            )));
        }
        let optim_st = SafeTensors::deserialize(&optim).map_err(serialize_error)?;
        let (_, optim_meta) = SafeTensors::read_metadata(&optim).map_err(serialize_error)?;

        let param_bytes: Vec<(String, Vec<usize>, &[u8])> = params
            .iter()
            .map(|t| {
                (
                    format!("{PARAM}{}", t.name),
                    t.shape.clone(),
                    bytemuck::cast_slice::<f32, u8>(&t.values),
                )
            })
            .collect();
        let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
        for (name, shape, bytes) in &param_bytes {
            views.push((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(serialize_error)?,
            ));
        }
        for (name, view) in optim_st.tensors() {
            views.push((format!("{OPTIM}{name}"), view));
        }
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), CHECKPOINT_FORMAT.to_string());
        metadata.insert("config".to_string(), to_json(self.config())?);
        metadata.insert("step".to_string(), self.steps_recorded().to_string());
        metadata.insert("history".to_string(), to_json(self.history())?);
        metadata.insert("dataset".to_string(), fingerprint_hex(self.data()));
        if let Some(vocab) = self.data().vocab() {
            metadata.insert(VOCAB.to_string(), to_json(vocab)?);
        }
        for (k, v) in optim_meta.metadata().clone().unwrap_or_default() {
            metadata.insert(format!("{OPTIM}{k}"), v);
        }
        safetensors::serialize(views, Some(metadata)).map_err(serialize_error)
    }

    /// Reads the parameters back and fails with [`Error::NonFiniteParameters`] if
    /// one holds a NaN or infinite value (which ReLU can hide from the loss). Async:
    /// waits for the GPU.
    pub async fn check_parameters(&self) -> Result<()> {
        self.check_finite(&self.model().read_parameters().await?)
    }

    fn check_finite(&self, params: &[NamedTensor]) -> Result<()> {
        check_finite(params).map_err(|tensor| Error::NonFiniteParameters {
            step: self.steps_recorded(),
            tensor,
        })
    }

    /// Rebuilds a session from [`Session::checkpoint_bytes`]: the configuration comes
    /// from the checkpoint, the data from `data` (which must be the data the run
    /// trained on). `source` names the checkpoint in errors. Everything is checked
    /// before the session is returned; a bad file gives [`Error::Checkpoint`].
    pub fn from_checkpoint_bytes(
        ctx: &GpuContext,
        data: impl Into<TrainData>,
        bytes: &[u8],
        source: &str,
    ) -> Result<Self> {
        let data = data.into();
        let file = CheckpointFile::parse(bytes, &data, source)?;
        let mut session = Session::new(ctx, file.config.clone(), data)?;
        session.restore(&file)?;
        Ok(session)
    }

    /// Restores a checkpoint into this session, which must have been created with
    /// the checkpoint's configuration and have no step in flight: parameters,
    /// optimizer state, step count and history. On an error in the optimizer state
    /// nothing is changed.
    pub fn restore(&mut self, file: &CheckpointFile) -> Result<()> {
        let bad = |reason: String| Error::checkpoint(&file.source, reason);
        if &file.config != self.config() {
            return Err(bad("its configuration is not this session's".into()));
        }
        if self.in_flight() > 0 {
            return Err(bad(format!(
                "{} steps of this session are still in flight",
                self.in_flight()
            )));
        }
        let (model, optimizer) = self.parts_mut();
        optimizer.load_state_bytes(&file.optimizer_state, &file.source)?;
        optimizer.set_scheduled(file.step);
        model.write_parameters(&file.params)?;
        self.set_progress(file.step, file.history.clone());
        Ok(())
    }
}

/// A training checkpoint read and checked on the CPU (format, configuration, step,
/// history, data fingerprint, every parameter's shape and finiteness), before any
/// GPU work: [`Session::restore`] then checks and loads the optimizer state.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    source: String,
    config: TrainConfig,
    step: u64,
    history: History,
    params: Vec<NamedTensor>,
    optimizer_state: Vec<u8>,
}

impl CheckpointFile {
    /// The configuration a checkpoint records, read without checking the rest of the
    /// file (to load the data it needs before [`CheckpointFile::parse`]).
    pub fn config_of(bytes: &[u8], source: &str) -> Result<TrainConfig> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        let meta = metadata(bytes, source)?;
        let config = meta.get("config");
        let config = config.ok_or_else(|| bad("metadata `config` is missing".into()))?;
        serde_json::from_str(config).map_err(|e| bad(format!("unreadable config: {e}")))
    }

    /// The configuration, vocabulary (text runs) and parameters a checkpoint records,
    /// each parameter present with its shape and finite; the optimizer state and the
    /// data are not read (for inference, e.g. sampling from a trained model).
    pub fn weights(
        bytes: &[u8],
        source: &str,
    ) -> Result<(TrainConfig, Option<Vocab>, Vec<NamedTensor>)> {
        let config = Self::config_of(bytes, source)?;
        let vocab = Self::vocab_of(bytes, source)?;
        let params = model_parameters(&open(bytes, source)?, &config, source)?;
        Ok((config, vocab, params))
    }

    /// The vocabulary a text run's checkpoint records (`None` for an image run), to
    /// encode the text it continues on; `source` names the file in errors.
    pub fn vocab_of(bytes: &[u8], source: &str) -> Result<Option<Vocab>> {
        metadata(bytes, source)?
            .get(VOCAB)
            .map(|v| {
                serde_json::from_str(v)
                    .map_err(|e| Error::checkpoint(source, format!("unreadable vocabulary: {e}")))
            })
            .transpose()
    }

    /// Parses and checks the bytes of [`Session::checkpoint_bytes`] for a run on
    /// `data`; `source` names the file in errors ([`Error::Checkpoint`]).
    pub fn parse(bytes: &[u8], data: &TrainData, source: &str) -> Result<Self> {
        let bad = |reason: String| Error::checkpoint(source, reason);
        let st = open(bytes, source)?;
        let meta = metadata(bytes, source)?;
        check_vocab(Self::vocab_of(bytes, source)?.as_ref(), data).map_err(bad)?;
        let (config, step, history) = read_progress(&meta, data).map_err(bad)?;
        // Every declared parameter must be in the file with its shape (so the model
        // is no larger than the file) before anything is allocated for it.
        let params = model_parameters(&st, &config, source)?;
        let optim_views: Vec<(String, TensorView<'_>)> = st
            .tensors()
            .into_iter()
            .filter_map(|(n, v)| n.strip_prefix(OPTIM).map(|k| (k.to_string(), v)))
            .collect();
        let optim_meta: HashMap<String, String> = meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(OPTIM).map(|k| (k.to_string(), v.clone())))
            .collect();
        let optimizer_state = safetensors::serialize(optim_views, Some(optim_meta))
            .map_err(|e| bad(format!("optimizer state: {e}")))?;
        Ok(Self {
            source: source.to_string(),
            config,
            step,
            history,
            params,
            optimizer_state,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Steps the run had completed.
    pub fn step(&self) -> u64 {
        self.step
    }
}

/// The configuration, step and history in a checkpoint's metadata, checked against
/// each other and against `data`'s fingerprint.
fn read_progress(
    meta: &HashMap<String, String>,
    data: &TrainData,
) -> std::result::Result<(TrainConfig, u64, History), String> {
    let get = |k: &str| {
        meta.get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("metadata `{k}` is missing"))
    };
    if get("format")? != CHECKPOINT_FORMAT {
        return Err(format!(
            "format is {:?}, expected {CHECKPOINT_FORMAT}",
            get("format")?
        ));
    }
    let config: TrainConfig =
        serde_json::from_str(get("config")?).map_err(|e| format!("unreadable config: {e}"))?;
    let step: u64 = get("step")?
        .parse()
        .map_err(|e| format!("unreadable step: {e}"))?;
    let history: History =
        serde_json::from_str(get("history")?).map_err(|e| format!("unreadable history: {e}"))?;
    if step > config.steps || history.steps.len() as u64 != step {
        return Err(format!(
            "step {step} does not match a history of {} steps and a budget of {}",
            history.steps.len(),
            config.steps
        ));
    }
    if get("dataset")? != fingerprint_hex(data) {
        return Err(format!(
            "the run was trained on different data (fingerprint {}, the data given has {}); pass the run's own data",
            get("dataset")?,
            fingerprint_hex(data)
        ));
    }
    Ok((config, step, history))
}

#[cfg(not(target_arch = "wasm32"))]
impl Session {
    /// Writes a checkpoint to `path` atomically (temporary file, then rename), so the
    /// previous checkpoint survives a crash. Waits for the GPU.
    pub fn save_checkpoint(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.wait()?;
        let bytes = pollster::block_on(self.checkpoint_bytes())?;
        crate::file_io::write_atomic(path.as_ref(), &bytes)
    }

    /// Resumes the run saved at `path` (see [`Session::from_checkpoint_bytes`]).
    pub fn resume(
        ctx: &GpuContext,
        data: impl Into<TrainData>,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let bytes = crate::file_io::read_file(path)?;
        Self::from_checkpoint_bytes(ctx, data, &bytes, &path.display().to_string())
    }
}

/// `bytes` as a safetensors file; `source` names the file in errors.
fn open<'a>(bytes: &'a [u8], source: &str) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| Error::checkpoint(source, format!("not a safetensors file: {e}")))
}

/// The metadata of the safetensors file `bytes` (empty when it has none).
fn metadata(bytes: &[u8], source: &str) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::checkpoint(source, format!("not a safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Every parameter `config`'s model declares, read from `st` with its shape.
fn model_parameters(
    st: &SafeTensors<'_>,
    config: &TrainConfig,
    source: &str,
) -> Result<Vec<NamedTensor>> {
    let bad = |reason: String| Error::checkpoint(source, reason);
    let specs = config
        .model
        .architecture()
        .parameters()
        .map_err(|e| bad(format!("model configuration: {e}")))?;
    read_parameters(st, &specs).map_err(bad)
}

/// The `param.<name>` tensors of `st` for `specs`: each present, F32, of its shape
/// and finite, and no other `param.` tensor.
fn read_parameters(
    st: &SafeTensors<'_>,
    specs: &[ParamSpec],
) -> std::result::Result<Vec<NamedTensor>, String> {
    let mut params = Vec::with_capacity(specs.len());
    for spec in specs {
        let key = format!("{PARAM}{}", spec.name);
        let view = st
            .tensor(&key)
            .map_err(|_| format!("tensor `{key}` is missing"))?;
        if view.dtype() != Dtype::F32 || view.shape() != spec.shape.as_slice() {
            return Err(format!(
                "tensor `{key}` is {:?}{:?}, expected F32{:?}",
                view.dtype(),
                view.shape(),
                spec.shape
            ));
        }
        params.push(NamedTensor {
            name: spec.name.clone(),
            shape: spec.shape.clone(),
            values: bytemuck::pod_collect_to_vec(view.data()),
        });
    }
    check_finite(&params).map_err(|t| format!("parameter `{t}` holds NaN or infinite values"))?;
    let unknown: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| {
            n.strip_prefix(PARAM)
                .is_some_and(|name| specs.iter().all(|s| s.name != name))
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!("unknown parameters {unknown:?}"));
    }
    Ok(params)
}

/// The name of the first tensor holding a NaN or infinite value, if any.
fn check_finite(tensors: &[NamedTensor]) -> std::result::Result<(), String> {
    match tensors
        .iter()
        .find(|t| t.values.iter().any(|v| !v.is_finite()))
    {
        Some(t) => Err(t.name.clone()),
        None => Ok(()),
    }
}

/// Checks a checkpoint's vocabulary (`None`: an image run) against the data's,
/// naming the characters that only one of them has.
fn check_vocab(saved: Option<&Vocab>, data: &TrainData) -> std::result::Result<(), String> {
    match (saved, data.vocab()) {
        (None, None) => Ok(()),
        (Some(_), None) => Err("the run trained on text; pass its text, not images".into()),
        (None, Some(_)) => Err("the run trained on images; pass its images, not a text".into()),
        (Some(saved), Some(given)) if saved == given => Ok(()),
        (Some(saved), Some(given)) => {
            let only = |a: &Vocab, b: &Vocab| -> String {
                a.chars()
                    .iter()
                    .filter(|c| b.id(**c).is_none())
                    .collect::<String>()
            };
            Err(format!(
                "its vocabulary ({} characters) is not the text's ({}): characters only in the checkpoint {:?}, only in the text {:?}",
                saved.len(),
                given.len(),
                only(saved, given),
                only(given, saved)
            ))
        }
    }
}

fn fingerprint_hex(data: &TrainData) -> String {
    format!("{:016x}", data.fingerprint())
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::InvalidConfig(format!("to JSON: {e}")))
}
