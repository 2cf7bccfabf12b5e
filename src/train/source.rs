//! What a run trains on ([`TrainData`]: labelled images or a text corpus) and the
//! session's feed of it ([`Feed`]): each step's batch and the fixed evaluation set,
//! as model [`Batch`]es.

use std::sync::Arc;

use crate::data::DatasetSplit;
use crate::data::text::{TextBatch, TextCorpus, Vocab};
use crate::error::{Error, Result};
use crate::model::{Batch, InputKind, ModelIo, PatchMasks, Task};
use crate::train::config::TrainConfig;
use crate::train::inputs::BatchStream;

/// FNV-1a 64-bit offset basis and prime (the image data's fingerprint uses the same).
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The data of a training run: images with class labels, or a text corpus for a
/// language model (trained on its random windows, validated on its fixed ones).
#[derive(Debug, Clone)]
pub enum TrainData {
    /// Labelled images: training on `train`, evaluation on `test`.
    Images(Arc<DatasetSplit>),
    /// A text corpus: training windows from its training split, evaluation on every
    /// window of its validation split.
    Text(Arc<TextCorpus>),
}

impl From<Arc<DatasetSplit>> for TrainData {
    fn from(data: Arc<DatasetSplit>) -> Self {
        TrainData::Images(data)
    }
}

impl From<Arc<TextCorpus>> for TrainData {
    fn from(corpus: Arc<TextCorpus>) -> Self {
        TrainData::Text(corpus)
    }
}

impl TrainData {
    /// The kind of input the data feeds a model.
    pub fn input_kind(&self) -> InputKind {
        match self {
            TrainData::Images(_) => InputKind::Images,
            TrainData::Text(_) => InputKind::Tokens,
        }
    }

    /// The vocabulary of a text corpus (`None` for images).
    pub fn vocab(&self) -> Option<&Vocab> {
        match self {
            TrainData::Images(_) => None,
            TrainData::Text(c) => Some(c.vocab()),
        }
    }

    /// A 64-bit fingerprint of the data (checkpoints record it): the image data's
    /// [`DatasetSplit::fingerprint`], or FNV-1a over a corpus's context, vocabulary
    /// and both splits' tokens.
    pub fn fingerprint(&self) -> u64 {
        match self {
            TrainData::Images(d) => d.fingerprint(),
            TrainData::Text(c) => {
                let sizes = [c.context(), c.train().len(), c.validation().len()];
                let words = sizes
                    .into_iter()
                    .map(|n| n as u32)
                    .chain(c.vocab().chars().iter().map(|&ch| u32::from(ch)))
                    .chain(c.train().tokens().iter().copied())
                    .chain(c.validation().tokens().iter().copied());
                words.fold(FNV_OFFSET, |h, w| {
                    (h ^ u64::from(w)).wrapping_mul(FNV_PRIME)
                })
            }
        }
    }

    /// Checks that a model of `io` can train on this data with `batch_size` samples
    /// per step.
    pub fn check_fits(&self, io: &ModelIo, batch_size: usize) -> Result<()> {
        if io.input != self.input_kind() {
            return Err(Error::InvalidConfig(format!(
                "the {} model reads {:?} but the data holds {:?}",
                io.name,
                io.input,
                self.input_kind()
            )));
        }
        match self {
            TrainData::Images(data) => check_images(io, data, batch_size),
            TrainData::Text(corpus) => check_text(io, corpus),
        }
    }
}

fn check_images(io: &ModelIo, data: &DatasetSplit, batch_size: usize) -> Result<()> {
    let sample = io.sample_len();
    for (part, ds) in [("training", &data.train), ("test", &data.test)] {
        if ds.image_len() != sample {
            return Err(Error::shape(
                format!("{} input", io.name),
                format!(
                    "the model takes {sample} values per image, the {part} images have {:?}",
                    ds.image_shape()
                ),
            ));
        }
        if io.task == Task::Classify && ds.num_classes() > io.classes {
            return Err(Error::shape(
                format!("{} classes", io.name),
                format!(
                    "the model has {} classes, the {part} set {}",
                    io.classes,
                    ds.num_classes()
                ),
            ));
        }
    }
    if batch_size > data.train.len() {
        return Err(Error::InvalidConfig(format!(
            "batch size {batch_size} exceeds the {} training samples",
            data.train.len()
        )));
    }
    if data.test.is_empty() {
        return Err(Error::InvalidConfig("the test set is empty".into()));
    }
    Ok(())
}

fn check_text(io: &ModelIo, corpus: &TextCorpus) -> Result<()> {
    let context = io.sample_len();
    if context != corpus.context() {
        return Err(Error::InvalidConfig(format!(
            "the {} model's context is {context} tokens, the corpus was cut into windows of {}",
            io.name,
            corpus.context()
        )));
    }
    if corpus.vocab().len() > io.classes {
        return Err(Error::InvalidConfig(format!(
            "the {} model's vocabulary holds {} tokens, the text needs {}",
            io.name,
            io.classes,
            corpus.vocab().len()
        )));
    }
    Ok(())
}

/// A reconstructing model's masks in a [`Feed`].
#[derive(Debug)]
pub(crate) struct FeedMasks {
    /// The run's seed (the training masks depend on it and the step).
    seed: u64,
    /// The current batch's.
    batch: PatchMasks,
    /// The fixed validation masks of the test set.
    validation: PatchMasks,
}

/// A session's feed: the current training batch and the fixed evaluation set, in
/// the form the model takes.
#[derive(Debug)]
pub(crate) enum Feed {
    /// Images: the deterministic (augmented, standardized) stream and the
    /// standardized test set.
    Images {
        data: Arc<DatasetSplit>,
        stream: BatchStream,
        images: Vec<f32>,
        labels: Vec<u32>,
        test_images: Vec<f32>,
        test_labels: Vec<u32>,
        /// A reconstructing model's masks.
        masks: Option<Box<FeedMasks>>,
    },
    /// Text: the current window batch and the validation windows.
    Text {
        corpus: Arc<TextCorpus>,
        seed: u64,
        batch: TextBatch,
        validation: TextBatch,
    },
}

impl Feed {
    /// The feed of a run of `config` on `data` (checked with [`TrainData::check_fits`]).
    pub fn new(config: &TrainConfig, data: &TrainData) -> Self {
        match data {
            TrainData::Images(data) => {
                let stream = BatchStream::for_run(config, &data.train);
                let mut test_images = data.test.images().to_vec();
                stream.standardize().apply(&mut test_images);
                let masks = match config.model.architecture().io().task {
                    Task::Classify => None,
                    Task::Reconstruct(m) => Some(Box::new(FeedMasks {
                        seed: config.seed,
                        batch: PatchMasks::for_step(m, config.seed, 1, 0),
                        validation: PatchMasks::validation(m, data.test.len()),
                    })),
                };
                Feed::Images {
                    masks,
                    data: data.clone(),
                    stream,
                    images: Vec::new(),
                    labels: Vec::new(),
                    test_images,
                    test_labels: data.test.labels().iter().map(|&l| u32::from(l)).collect(),
                }
            }
            TrainData::Text(corpus) => Feed::Text {
                corpus: corpus.clone(),
                seed: config.seed,
                batch: corpus.train_batch(config.seed, 0, 0),
                validation: validation_windows(corpus, config.eval_windows),
            },
        }
    }

    /// Loads the batch of training step `step` (1-based) of `rows` samples and
    /// returns it.
    pub fn next_batch(&mut self, step: u64, rows: usize) -> Batch<'_> {
        match self {
            Feed::Images {
                data,
                stream,
                images,
                labels,
                masks,
                ..
            } => {
                stream.batch_into(&data.train, step, images, labels);
                match masks {
                    Some(m) => {
                        m.batch = PatchMasks::for_step(m.batch.masking(), m.seed, step, rows);
                        Batch::masked(images, m.batch.all())
                    }
                    None => Batch::new(images, labels),
                }
            }
            Feed::Text {
                corpus,
                seed,
                batch,
                ..
            } => {
                *batch = corpus.train_batch(*seed, step, rows);
                Batch::tokens(&batch.inputs, &batch.targets)
            }
        }
    }

    /// The evaluation set: the test images, or the validation windows.
    pub fn evaluation(&self) -> Batch<'_> {
        match self {
            Feed::Images {
                test_images,
                test_labels,
                masks,
                ..
            } => match masks {
                Some(m) => Batch::masked(test_images, m.validation.all()),
                None => Batch::new(test_images, test_labels),
            },
            Feed::Text { validation, .. } => Batch::tokens(&validation.inputs, &validation.targets),
        }
    }
}

/// The validation windows of `corpus`: every one, or `cap` of them evenly spaced
/// (window `i * windows / cap` for `i` in `0..cap`) when it has more.
fn validation_windows(corpus: &TextCorpus, cap: Option<usize>) -> TextBatch {
    let (windows, context) = (corpus.validation_windows(), corpus.context());
    let count = cap.map_or(windows, |c| c.clamp(1, windows));
    let starts: Vec<usize> = (0..count).map(|i| i * windows / count * context).collect();
    let tokens = corpus.validation().tokens();
    let window = |offset: usize| -> Vec<u32> {
        starts
            .iter()
            .flat_map(|&s| &tokens[s + offset..s + offset + context])
            .copied()
            .collect()
    };
    TextBatch {
        inputs: window(0),
        targets: window(1),
        starts,
        context,
    }
}
