//! Deterministic shuffling and mini-batching.
//!
//! The sample order of epoch `e` under seed `s` is a pure function of
//! `(s, e, len)`, identical on every platform (64-bit, 32-bit, wasm32) and
//! independent of anything done in earlier epochs:
//!
//! 1. the generator is `ChaCha8Rng::seed_from_u64(s)` with its stream set
//!    to `e` ([`epoch_rng`]);
//! 2. the order starts as `0, 1, .., len - 1` and is shuffled by
//!    Fisher-Yates from the back: for `i = len - 1` down to `1`, swap `i`
//!    with `j = uniform(0..=i)` ([`shuffle`]);
//! 3. `uniform(0..n)` takes `x = next_u64()` and returns the high 64 bits of
//!    `x * n` (128-bit product), redrawing while the low 64 bits are below
//!    `2^64 mod n` (Lemire's unbiased method) ([`uniform_below`]).
//!
//! Only `u64` arithmetic is involved, so the width of `usize` never matters.
//! The shuffle is written out here rather than taken from
//! `rand::seq::SliceRandom` so that the order cannot change with a `rand`
//! release.
//!
//! ```
//! use coptim::data::Batcher;
//!
//! let batcher = Batcher::new(10, 4, 42);
//! for epoch in 0..2 {
//!     let batches: Vec<Vec<usize>> = batcher.epoch(epoch).collect();
//!     assert_eq!(batches.len(), 3); // 4 + 4 + 2
//!     let mut seen: Vec<usize> = batches.concat();
//!     seen.sort();
//!     assert_eq!(seen, (0..10).collect::<Vec<_>>());
//! }
//! // The same seed always gives the same order.
//! assert_eq!(batcher.epoch_order(1), Batcher::new(10, 4, 42).epoch_order(1));
//! ```

use std::iter::FusedIterator;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::setters::setters;

/// The generator for epoch `epoch` under `seed`:
/// `ChaCha8Rng::seed_from_u64(seed)` with stream `epoch`.
///
/// Each epoch gets its own ChaCha stream, so epochs are independent and can
/// be generated in any order.
pub fn epoch_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    rng
}

/// A uniformly distributed integer in `0..n`, portable across platforms
/// (see the [module docs](self)).
///
/// # Panics
///
/// If `n == 0`.
pub fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    assert!(n > 0, "uniform_below: empty range");
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        // 2^64 mod n: the number of low values to reject.
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// Shuffles `items` in place with the portable Fisher-Yates shuffle of the
/// [module docs](self).
pub fn shuffle<T, R: Rng + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The sample order of epoch `epoch` for a dataset of `len` samples: a
/// permutation of `0..len` determined by `(seed, epoch)`.
///
/// ```
/// let a = coptim::data::batcher::permutation(5, 7, 0);
/// let mut sorted = a.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]);
/// assert_eq!(a, coptim::data::batcher::permutation(5, 7, 0));
/// ```
pub fn permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    shuffle(&mut order, &mut epoch_rng(seed, epoch));
    order
}

/// Splits a dataset of `num_samples` samples into mini-batches of indices,
/// reshuffled every epoch from a `u64` seed (see the [module docs](self)).
///
/// A `Batcher` is a small, copyable description; [`Batcher::epoch`] produces
/// the batches of one epoch and [`Batcher::epochs`] an endless sequence of
/// epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batcher {
    num_samples: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
}

impl Batcher {
    /// A shuffling batcher over `num_samples` samples that keeps the last,
    /// smaller batch (see [`Batcher::with_drop_last`]).
    ///
    /// # Panics
    ///
    /// If `batch_size == 0`.
    pub fn new(num_samples: usize, batch_size: usize, seed: u64) -> Self {
        assert!(batch_size > 0, "Batcher: batch_size must be at least 1");
        Self {
            num_samples,
            batch_size,
            seed,
            shuffle: true,
            drop_last: false,
        }
    }

    setters! {
        /// Whether to drop the last batch of an epoch when it has fewer than
        /// `batch_size` samples (useful when a training step needs a fixed batch
        /// size). Default: `false`.
        with_drop_last(drop_last: bool);
        /// Whether to shuffle. With `false` every epoch visits the samples in
        /// order `0..num_samples` (e.g. for evaluation). Default: `true`.
        with_shuffle(shuffle: bool);
    }

    /// The number of samples the batcher covers.
    pub fn num_samples(&self) -> usize {
        self.num_samples
    }

    /// The (maximum) number of indices per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether the order is shuffled.
    pub fn shuffles(&self) -> bool {
        self.shuffle
    }

    /// Whether an incomplete last batch is dropped.
    pub fn drops_last(&self) -> bool {
        self.drop_last
    }

    /// The number of batches in every epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.num_samples / self.batch_size
        } else {
            self.num_samples.div_ceil(self.batch_size)
        }
    }

    /// The full sample order of epoch `epoch` (a permutation of
    /// `0..num_samples`, before any batch is dropped).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        if self.shuffle {
            permutation(self.num_samples, self.seed, epoch)
        } else {
            (0..self.num_samples).collect()
        }
    }

    /// The batches of epoch `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        EpochBatches {
            epoch,
            order: self.epoch_order(epoch),
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            next: 0,
        }
    }

    /// An endless iterator over epochs `0, 1, 2, ..`, each reshuffled.
    ///
    /// ```
    /// let batcher = coptim::data::Batcher::new(6, 3, 1);
    /// for (epoch, batches) in batcher.epochs().take(2).enumerate() {
    ///     assert_eq!(batches.epoch(), epoch as u64);
    ///     assert_eq!(batches.count(), 2);
    /// }
    /// ```
    pub fn epochs(&self) -> Epochs {
        self.epochs_from(0)
    }

    /// An endless iterator over epochs `first, first + 1, ..` (e.g. to
    /// resume training).
    pub fn epochs_from(&self, first: u64) -> Epochs {
        Epochs {
            batcher: *self,
            next_epoch: first,
        }
    }
}

/// The batches of one epoch: an iterator of index vectors, all of
/// `batch_size` except possibly the last (unless dropped).
#[derive(Debug, Clone)]
pub struct EpochBatches {
    epoch: u64,
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    next: usize,
}

impl EpochBatches {
    /// The epoch number.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The epoch's full sample order (including samples of a dropped last
    /// batch).
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl Iterator for EpochBatches {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let remaining = self.order.len() - self.next;
        if remaining == 0 || (self.drop_last && remaining < self.batch_size) {
            return None;
        }
        let end = self.next + remaining.min(self.batch_size);
        let batch = self.order[self.next..end].to_vec();
        self.next = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.order.len() - self.next;
        let n = if self.drop_last {
            remaining / self.batch_size
        } else {
            remaining.div_ceil(self.batch_size)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for EpochBatches {}
impl FusedIterator for EpochBatches {}

/// An endless iterator over the epochs of a [`Batcher`]; see
/// [`Batcher::epochs`].
#[derive(Debug, Clone)]
pub struct Epochs {
    batcher: Batcher,
    next_epoch: u64,
}

impl Iterator for Epochs {
    type Item = EpochBatches;

    fn next(&mut self) -> Option<EpochBatches> {
        let batches = self.batcher.epoch(self.next_epoch);
        self.next_epoch = self.next_epoch.wrapping_add(1);
        Some(batches)
    }
}

impl FusedIterator for Epochs {}
