//! The crate's error type: every fallible operation returns [`Error`](enum@Error).

use thiserror::Error;

/// Everything that can go wrong in coptim, as a typed value (never a panic).
#[derive(Debug, Error)]
pub enum Error {
    /// No adapter could be found for the requested backends.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a GPU device: {0}")]
    DeviceRequest(String),
    /// A feature the caller asked for is missing on this adapter.
    #[error("adapter `{adapter}` lacks the required feature {feature}")]
    MissingFeature {
        /// The adapter's name.
        adapter: String,
        /// The missing feature, as wgpu names it.
        feature: String,
    },
    /// A size exceeds what the device allows.
    #[error("limit exceeded: {what} needs {needed}, the device allows {allowed}")]
    LimitExceeded {
        /// What was too large.
        what: String,
        /// The size that was asked for.
        needed: u64,
        /// The device's limit.
        allowed: u64,
    },
    /// A slice or tensor had the wrong number of elements.
    #[error("length mismatch for {what}: expected {expected} elements, got {got}")]
    LengthMismatch {
        /// What was being written or compared.
        what: String,
        /// The number of elements expected.
        expected: u64,
        /// The number of elements given.
        got: u64,
    },
    /// A tensor with zero elements was declared.
    #[error("tensor `{0}` has zero elements")]
    EmptyTensor(String),
    /// Two tensors were declared with the same name.
    #[error("tensor `{0}` is declared twice")]
    DuplicateTensor(String),
    /// A view of a caller's buffer that coptim cannot use (missing `STORAGE` usage,
    /// out of bounds, misaligned, overlapping another view, or from another device).
    #[error("view of tensor `{tensor}`: {reason}")]
    InvalidView {
        /// The tensor the view was given for.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor name that the arena does not know.
    #[error("unknown tensor `{0}`")]
    UnknownTensor(String),
    /// A WGSL module could not be assembled (see [`crate::wgsl`]).
    #[error("shader {0}")]
    Shader(String),
    /// An optimizer or schedule setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An optimizer name that no registered member answers to.
    #[error("unknown optimizer `{name}` (expected one of {})", known.join(", "))]
    UnknownOptimizer {
        /// The name given.
        name: String,
        /// Every name coptim accepts, from the registry.
        known: Vec<String>,
    },
    /// A checkpoint or state file could not be used; nothing was changed.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file involved.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The GPU reported a validation or out-of-memory error.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The device was lost (driver reset, removal, or destroy).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    /// Mapping a buffer for reading failed.
    #[error("buffer readback failed: {0}")]
    Readback(String),
    /// Tensor shapes that an operation cannot combine (or a model configuration whose
    /// sizes do not fit together).
    #[error("shape mismatch in {op}: {detail}")]
    ShapeMismatch {
        /// The operation or model part.
        op: String,
        /// What did not fit, with the shapes.
        detail: String,
    },
    /// A class label that is not below the number of classes.
    #[error("label {label} at position {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Position of the label in the batch.
        index: usize,
        /// The label.
        label: u32,
        /// The number of classes.
        classes: usize,
    },
    /// A training run produced a NaN or infinite loss and was stopped; the last
    /// checkpoint written before it (if any) is kept.
    #[error(
        "training stopped: the loss at step {step} is {loss} (not finite); lower the learning rate or enable gradient clipping"
    )]
    NonFiniteLoss {
        /// The step whose loss was not finite (1-based).
        step: u64,
        /// The loss.
        loss: f32,
    },
    /// A training run's parameters hold NaN or infinite values (a diverged run whose
    /// loss still looked finite); no checkpoint is written from them.
    #[error(
        "training stopped: parameter `{tensor}` holds NaN or infinite values after step {step}; lower the learning rate or enable gradient clipping"
    )]
    NonFiniteParameters {
        /// Steps completed when it was seen.
        step: u64,
        /// The first tensor found with a non-finite value.
        tensor: String,
    },
    /// An output directory that cannot be written (checked before any work).
    #[error("output directory {path} is not writable: {source}")]
    NotWritable {
        /// The directory.
        path: String,
        /// Why a test file could not be created there.
        #[source]
        source: std::io::Error,
    },
    /// A dataset could not be read.
    #[cfg(feature = "data")]
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// An I/O error, with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with the crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    #[cfg(feature = "nn")]
    pub(crate) fn shape(op: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::ShapeMismatch {
            op: op.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn checkpoint(path: impl AsRef<std::path::Path>, reason: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.as_ref().display().to_string(),
            reason: reason.into(),
        }
    }
}
