//! Datasets: reading, holding and batching image-classification data and text.
//!
//! No GPU code lives here; this module turns files into a [`Dataset`] (images
//! as `f32` in `[0, 1]`, `N x C x H x W`, plus `u8` labels) or a [`text::TextCorpus`]
//! (character ids, split into training and validation text; [`text`]) and decides which
//! samples or windows go into each mini-batch.
//!
//! * [`bundled_mnist`]: 10,000 real MNIST digits compiled into the crate
//!   (8,000 train / 2,000 test), available everywhere including wasm32.
//! * [`load_mnist_dir`]: the four standard MNIST IDX files from a directory,
//!   gzipped or not (also Fashion-MNIST, KMNIST).
//! * [`load_cifar10_dir`]: the CIFAR-10 binary batches from a directory.
//! * [`idx`]: the IDX format itself, [`cifar`]: CIFAR-10 batch parsing from
//!   memory (e.g. bytes fetched in a browser).
//! * [`Batcher`]: deterministic, platform-independent shuffling and batching
//!   from a `u64` seed.
//! * [`text::bundled_shakespeare`] and [`text::TextCorpus::from_file`]: character-level text
//!   (the bundled plays split by play, any UTF-8 file split 90/10 by position),
//!   random windows per seed and step, and the bigram yardstick.
//!
//! All failures are a [`DataError`] naming the file and the problem.
//! The path-based loaders are not compiled for wasm32; use the `parse_*`
//! functions on bytes there.
//!
//! ```
//! use coptim::data::{bundled_mnist, Batcher};
//!
//! let mnist = bundled_mnist()?;
//! let batcher = Batcher::new(mnist.train.len(), 128, 0).with_drop_last(true);
//! let first = batcher.epoch(0).next().unwrap();
//! let (x, y) = mnist.train.batch(&first);
//! assert_eq!(x.len(), 128 * 28 * 28);
//! assert_eq!(y.len(), 128);
//! # Ok::<(), coptim::data::DataError>(())
//! ```

#![warn(missing_docs)]

pub mod batcher;
pub mod cifar;
pub mod dataset;
pub mod error;
pub mod idx;
pub mod mnist;
pub mod text;

pub use batcher::{Batcher, EpochBatches, Epochs};
#[cfg(not(target_arch = "wasm32"))]
pub use cifar::load_cifar10_dir;
pub use cifar::parse_cifar10_batch;
pub use dataset::{Dataset, DatasetSplit, SampleShape};
pub use error::DataError;
#[cfg(not(target_arch = "wasm32"))]
pub use idx::read_idx;
pub use idx::{IdxArray, parse_idx};
#[cfg(not(target_arch = "wasm32"))]
pub use mnist::load_mnist_dir;
pub use mnist::{bundled_mnist, parse_mnist, parse_mnist_pair};
