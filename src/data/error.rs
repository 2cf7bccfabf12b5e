//! The error type of the data layer.

use std::path::PathBuf;

/// Everything that can go wrong while reading a dataset.
///
/// Every variant names the file it is about: for path-based loaders the path,
/// for in-memory parsers the name the caller passed (for the bundled MNIST
/// files, e.g. `"train-images-idx3-ubyte.gz (bundled)"`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A required file does not exist.
    #[error("missing file: {}{}", .path.display(), tried_suffix(.tried))]
    MissingFile {
        /// The path that was looked for (the first candidate, when several
        /// names were accepted).
        path: PathBuf,
        /// Every path that was tried, in order (may be just `path`).
        tried: Vec<PathBuf>,
    },

    /// The file exists but could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file that failed to read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file (after decompression) is shorter than its header or record
    /// structure requires.
    #[error("{file}: truncated file: expected {expected} bytes, got {actual}")]
    Truncated {
        /// The file concerned.
        file: String,
        /// The number of bytes the header or record size requires.
        expected: u64,
        /// The number of bytes actually present.
        actual: u64,
    },

    /// The file does not start with the magic number its format requires.
    #[error("{file}: bad magic number 0x{found:08x} (expected 0x{expected:08x}, {what})")]
    BadMagic {
        /// The file concerned.
        file: String,
        /// The magic number that was expected.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
        /// What the expected magic stands for, e.g. `"IDX u8 3-d images"`.
        what: &'static str,
    },

    /// An image file and its label file disagree on the number of samples.
    #[error(
        "count mismatch: {images_file} holds {images} images but {labels_file} holds {labels} labels"
    )]
    CountMismatch {
        /// The image file.
        images_file: String,
        /// The number of images it holds.
        images: usize,
        /// The label file.
        labels_file: String,
        /// The number of labels it holds.
        labels: usize,
    },

    /// A label is not a valid class index.
    #[error(
        "{file}: label out of range: sample {index} has label {label}, but there are only {num_classes} classes"
    )]
    LabelOutOfRange {
        /// The file holding the label.
        file: String,
        /// The sample's index within the file.
        index: usize,
        /// The offending label.
        label: u8,
        /// The number of classes (valid labels are `0..num_classes`).
        num_classes: usize,
    },

    /// The file starts with the gzip magic bytes but does not decompress.
    #[error("{file}: gzip error: {source}")]
    Gzip {
        /// The file concerned.
        file: String,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },

    /// A text cannot serve as a language-model corpus (see
    /// [`crate::data::text`]): not UTF-8, empty, shorter than one window,
    /// or holding characters outside a given vocabulary.
    #[error("{file}: {problem}")]
    Text {
        /// The file (or split of a file) concerned.
        file: String,
        /// What is wrong with it.
        problem: super::text::TextProblem,
    },

    /// The file is structurally wrong in a way not covered above
    /// (unexpected dimensions, trailing bytes, sizes that overflow, datasets
    /// that cannot be combined).
    #[error("{file}: malformed data: {reason}")]
    Malformed {
        /// The file (or dataset) concerned.
        file: String,
        /// What was wrong.
        reason: String,
    },
}

/// Formats the " (tried a, b)" suffix of [`DataError::MissingFile`].
fn tried_suffix(tried: &[PathBuf]) -> String {
    if tried.len() <= 1 {
        return String::new();
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    format!(" (tried {})", list.join(", "))
}

impl DataError {
    /// Builds a [`DataError::Malformed`].
    pub(crate) fn malformed(file: &str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}
