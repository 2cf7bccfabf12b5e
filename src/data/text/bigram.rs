//! The bigram yardstick: a character bigram model fitted by counting, with
//! add-k smoothing, and its loss in exact `f64` arithmetic.

use std::collections::{BTreeMap, HashMap};

/// The add-k constant of the yardstick ([`super::TextCorpus::bigram_val_loss`]):
/// `k = 1` (Laplace). It is the textbook default rather than a value tuned on the
/// validation split; on the bundled corpus any `k` from 0.1 to 1 moves the
/// validation loss by under 0.006 nats per token.
pub const BIGRAM_SMOOTHING: f64 = 1.0;

/// A bigram model over token ids `0..vocab_size`:
/// `p(b | a) = (count(a, b) + k) / (count(a) + k * vocab_size)`, where
/// `count(a, b)` is how often `b` follows `a` in the training tokens and
/// `count(a)` how often `a` is followed by anything.
///
/// ```
/// use coptim::data::text::Bigram;
///
/// // "abab" over {a, b}: a->b twice, b->a once; k = 1.
/// let model = Bigram::fit(&[0, 1, 0, 1], 2, 1.0);
/// assert_eq!(model.prob(0, 1), 3.0 / 4.0); // (2 + 1) / (2 + 2)
/// assert_eq!(model.prob(1, 1), 1.0 / 3.0); // (0 + 1) / (1 + 2)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Bigram {
    vocab_size: usize,
    smoothing: f64,
    pairs: HashMap<(u32, u32), u64>,
    followed: Vec<u64>,
}

impl Bigram {
    /// Counts the consecutive pairs of `tokens`.
    ///
    /// # Panics
    ///
    /// If a token is not below `vocab_size`, or `smoothing` is not positive
    /// and finite (an unseen pair would get probability 0 or NaN).
    pub fn fit(tokens: &[u32], vocab_size: usize, smoothing: f64) -> Self {
        assert!(
            smoothing > 0.0 && smoothing.is_finite(),
            "Bigram: smoothing must be positive and finite, got {smoothing}"
        );
        let mut pairs = HashMap::new();
        let mut followed = vec![0u64; vocab_size];
        for w in tokens.windows(2) {
            assert!(
                (w[0] as usize) < vocab_size && (w[1] as usize) < vocab_size,
                "Bigram: token out of range 0..{vocab_size}"
            );
            *pairs.entry((w[0], w[1])).or_insert(0) += 1;
            followed[w[0] as usize] += 1;
        }
        Self {
            vocab_size,
            smoothing,
            pairs,
            followed,
        }
    }

    /// The number of token ids the model covers.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The add-k constant.
    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }

    /// `p(next | prev)`.
    ///
    /// # Panics
    ///
    /// If `prev` is not below [`Bigram::vocab_size`].
    pub fn prob(&self, prev: u32, next: u32) -> f64 {
        let count = self.pairs.get(&(prev, next)).copied().unwrap_or(0);
        let k = self.smoothing;
        (count as f64 + k) / (self.followed[prev as usize] as f64 + k * self.vocab_size as f64)
    }

    /// The mean negative log-likelihood, in nats per token, of every token of
    /// `tokens` after the first given the one before it.
    ///
    /// Each distinct pair's `-ln p` is multiplied by how often the pair
    /// occurs and the products are summed in ascending pair order, so the
    /// result does not depend on hashing or platform.
    ///
    /// # Panics
    ///
    /// If `tokens` has fewer than two tokens, or one is not below
    /// [`Bigram::vocab_size`].
    pub fn mean_nll(&self, tokens: &[u32]) -> f64 {
        assert!(tokens.len() >= 2, "Bigram: need at least two tokens");
        let mut counts: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for w in tokens.windows(2) {
            assert!(
                w.iter().all(|&t| (t as usize) < self.vocab_size),
                "Bigram: token out of range 0..{}",
                self.vocab_size
            );
            *counts.entry((w[0], w[1])).or_insert(0) += 1;
        }
        let total: f64 = counts
            .iter()
            .map(|(&(a, b), &n)| -(n as f64) * self.prob(a, b).ln())
            .sum();
        total / (tokens.len() - 1) as f64
    }
}

/// Converts a loss in nats per token to bits per token (for a character
/// vocabulary, bits per character): divides by `ln 2`.
pub fn nats_to_bits(nats: f64) -> f64 {
    nats / std::f64::consts::LN_2
}
