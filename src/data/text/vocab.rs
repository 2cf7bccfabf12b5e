//! The character-level vocabulary of a text corpus.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::TextProblem;
use crate::data::error::DataError;

/// A character-level vocabulary: the distinct Unicode scalar values (`char`s)
/// of a corpus in ascending order; token id `i` is the `i`-th character.
///
/// Why characters and not bytes: the bundled corpus is ASCII, so its 73
/// characters give a 73-row embedding and output head instead of 256 rows
/// that would mostly never be trained, and a token is a character, so the
/// loss in bits per character is the loss in nats per token divided by
/// `ln 2` with no conversion factor. A byte vocabulary would accept every
/// input, but it would also split a non-ASCII character into several tokens
/// and could not tell the user that a text holds characters a trained model
/// has never seen: with characters, [`Vocab::encode`] refuses them, naming
/// the character and where it is.
///
/// A vocabulary is built from all the text of a corpus, both splits (as
/// nanoGPT's character-level Shakespeare does): a character that occurs only
/// in the validation split gets a token the model never sees as a target in
/// training, so its validation loss on that character is honestly high; the
/// alternative, an "unknown" token, would hide which characters were
/// missing. Text for an existing model (a prompt, a text to continue
/// training on) is encoded with that model's vocabulary, and any character
/// outside it is an error.
///
/// It serializes (serde) as `{"chars": "<the characters, in order>"}`, e.g.
/// into a checkpoint; deserializing checks that the characters are
/// non-empty, strictly ascending and no more than `u32::MAX` of them.
///
/// ```
/// use coptim::data::text::Vocab;
///
/// let vocab = Vocab::of_texts(&["hello", "world"]);
/// assert_eq!(vocab.chars(), &['d', 'e', 'h', 'l', 'o', 'r', 'w']);
/// assert_eq!(vocab.encode("hold", "prompt")?, vec![2, 4, 3, 0]);
/// assert_eq!(vocab.decode(&[6, 4, 5, 3, 0]).as_deref(), Some("world"));
/// assert!(vocab.encode("help", "prompt").is_err()); // no 'p'
///
/// let json = serde_json::to_string(&vocab).unwrap();
/// assert_eq!(json, r#"{"chars":"dehlorw"}"#);
/// assert_eq!(serde_json::from_str::<Vocab>(&json).unwrap(), vocab);
/// # Ok::<(), coptim::data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct Vocab {
    chars: Vec<char>,
}

/// The serialized form of a [`Vocab`].
#[derive(Serialize, Deserialize)]
struct VocabFile {
    chars: String,
}

impl TryFrom<VocabFile> for Vocab {
    type Error = String;

    fn try_from(file: VocabFile) -> Result<Self, String> {
        let chars: Vec<char> = file.chars.chars().collect();
        if chars.is_empty() {
            return Err("empty vocabulary".into());
        }
        if u32::try_from(chars.len()).is_err() {
            return Err(format!("{} characters do not fit u32 ids", chars.len()));
        }
        if let Some(pair) = chars.windows(2).find(|p| p[0] >= p[1]) {
            return Err(format!(
                "vocabulary characters must be strictly ascending: {:?} is followed by {:?}",
                pair[0], pair[1]
            ));
        }
        Ok(Self { chars })
    }
}

impl From<Vocab> for VocabFile {
    fn from(vocab: Vocab) -> Self {
        Self {
            chars: vocab.chars.into_iter().collect(),
        }
    }
}

impl Vocab {
    /// The distinct characters of `texts`, ascending (empty if all are empty).
    pub fn of_texts(texts: &[&str]) -> Self {
        let set: BTreeSet<char> = texts.iter().flat_map(|t| t.chars()).collect();
        Self {
            chars: set.into_iter().collect(),
        }
    }

    /// The number of characters (token ids are `0..len`).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary holds no character (only [`Vocab::of_texts`]
    /// of empty texts builds one).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, in token-id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The token id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<u32> {
        self.chars.binary_search(&c).ok().map(|i| i as u32)
    }

    /// The character of token `id`, if `id < len`.
    pub fn char_of(&self, id: u32) -> Option<char> {
        self.chars.get(id as usize).copied()
    }

    /// The token ids of `text`, one per character.
    ///
    /// Errors: [`TextProblem::OutOfVocabulary`] for the first character that
    /// is not in the vocabulary, naming `file` and the character's line and
    /// column (1-based, in characters).
    pub fn encode(&self, text: &str, file: &str) -> Result<Vec<u32>, DataError> {
        let mut ids = Vec::with_capacity(text.len());
        for (at, c) in text.char_indices() {
            match self.id(c) {
                Some(id) => ids.push(id),
                None => return Err(self.out_of_vocabulary(text, at, c, file)),
            }
        }
        Ok(ids)
    }

    /// The text of `ids`, or `None` if an id is not below [`Vocab::len`].
    pub fn decode(&self, ids: &[u32]) -> Option<String> {
        ids.iter().map(|&id| self.char_of(id)).collect()
    }

    /// The error for character `c` at byte `at` of `text`.
    fn out_of_vocabulary(&self, text: &str, at: usize, c: char, file: &str) -> DataError {
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        DataError::Text {
            file: file.to_owned(),
            problem: TextProblem::OutOfVocabulary {
                character: c,
                line: before.matches('\n').count() + 1,
                column: before[line_start..].chars().count() + 1,
                vocab_size: self.len(),
            },
        }
    }
}
