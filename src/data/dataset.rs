//! The in-memory dataset type.

use super::error::DataError;

/// An in-memory image-classification dataset.
///
/// Images are stored as `f32` in `[0, 1]`, row-major `N x C x H x W`
/// (sample, channel, row, column); labels are class indices `0..num_classes`.
/// The constructors check that the sizes agree and every label is in range,
/// so a `Dataset` is always consistent.
///
/// Memory: 4 bytes per pixel, e.g. about 31 MB for 10,000 MNIST digits and
/// about 737 MB for all 60,000 CIFAR-10 images.
///
/// ```
/// use coptim::data::{Dataset, SampleShape};
///
/// // Two 1x2x2 images with labels 0 and 1.
/// let shape = SampleShape { channels: 1, height: 2, width: 2, num_classes: 2 };
/// let ds = Dataset::from_u8(&[0, 255, 0, 255, 51, 51, 51, 51], vec![0, 1], shape)?;
/// assert_eq!(ds.len(), 2);
/// assert_eq!(ds.image(1), &[0.2, 0.2, 0.2, 0.2]);
///
/// let (x, y) = ds.batch(&[1, 0]);
/// assert_eq!(x.len(), 2 * 4);
/// assert_eq!(y, vec![1, 0]);
/// # Ok::<(), coptim::data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    images: Vec<f32>,
    labels: Vec<u8>,
    shape: SampleShape,
}

/// What every sample of a [`Dataset`] is: a `channels x height x width` image of one
/// of `num_classes` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleShape {
    /// Channels per image (1 for MNIST, 3 for CIFAR-10).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// The number of classes; labels are `0..num_classes`.
    pub num_classes: usize,
}

impl SampleShape {
    /// Checks that `num_pixels` values make one image per label, that no dimension
    /// is zero and that every label is in range, naming `file` in errors.
    fn check(&self, num_pixels: usize, labels: &[u8], file: &str) -> Result<(), DataError> {
        let SampleShape {
            channels,
            height,
            width,
            num_classes,
        } = *self;
        if channels == 0 || height == 0 || width == 0 || num_classes == 0 {
            return Err(DataError::malformed(
                file,
                format!(
                    "zero-sized shape: channels {channels}, height {height}, width {width}, classes {num_classes}"
                ),
            ));
        }
        let per_image = channels
            .checked_mul(height)
            .and_then(|x| x.checked_mul(width))
            .ok_or_else(|| DataError::malformed(file, "image size overflows usize"))?;
        if labels.len().checked_mul(per_image) != Some(num_pixels) {
            return Err(DataError::malformed(
                file,
                format!(
                    "{num_pixels} pixel values do not make {} images of {channels}x{height}x{width}",
                    labels.len()
                ),
            ));
        }
        check_labels(labels, num_classes, file)
    }
}

/// A dataset's training and test parts.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSplit {
    /// The training samples.
    pub train: Dataset,
    /// The held-out test samples.
    pub test: Dataset,
}

impl DatasetSplit {
    /// The fingerprint of both parts (see [`Dataset::fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        self.train.fingerprint().rotate_left(1) ^ self.test.fingerprint()
    }
}

impl Dataset {
    /// Builds a dataset from `f32` pixels (row-major `N x C x H x W`, values
    /// expected in `[0, 1]`) and labels.
    ///
    /// Errors with [`DataError::Malformed`] (named `"dataset"`) if
    /// `images.len() != labels.len() * channels * height * width` or a
    /// dimension or `num_classes` is zero, and with
    /// [`DataError::LabelOutOfRange`] if a label is `>= num_classes`. Pixel
    /// values are not checked.
    pub fn new(images: Vec<f32>, labels: Vec<u8>, shape: SampleShape) -> Result<Self, DataError> {
        shape.check(images.len(), &labels, "dataset")?;
        Ok(Self {
            images,
            labels,
            shape,
        })
    }

    /// Builds a dataset from `u8` pixels (row-major `N x C x H x W`), mapping
    /// each byte `b` to `b as f32 / 255.0`. Errors as [`Dataset::new`].
    pub fn from_u8(pixels: &[u8], labels: Vec<u8>, shape: SampleShape) -> Result<Self, DataError> {
        Self::from_u8_named(pixels, labels, shape, "dataset")
    }

    /// As [`Dataset::from_u8`], naming `file` in errors.
    pub(crate) fn from_u8_named(
        pixels: &[u8],
        labels: Vec<u8>,
        shape: SampleShape,
        file: &str,
    ) -> Result<Self, DataError> {
        shape.check(pixels.len(), &labels, file)?;
        Ok(Self {
            images: u8_to_unit_f32(pixels),
            labels,
            shape,
        })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All pixels, row-major `N x C x H x W`, in `[0, 1]`.
    pub fn images(&self) -> &[f32] {
        &self.images
    }

    /// All labels, one per sample, each `< num_classes()`.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// What every sample is: image dimensions and class count.
    pub fn sample_shape(&self) -> SampleShape {
        self.shape
    }

    /// Channels per image (1 for MNIST, 3 for CIFAR-10).
    pub fn channels(&self) -> usize {
        self.shape.channels
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.shape.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.shape.width
    }

    /// The image shape `[channels, height, width]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.shape.channels, self.shape.height, self.shape.width]
    }

    /// Values per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.image_shape().iter().product()
    }

    /// A 64-bit fingerprint of the samples, labels, shape and class count (FNV-1a
    /// style, one 32-bit word at a time, over the pixels' bits): equal data gives
    /// equal fingerprints on every platform. Checkpoints record it so that a run resumes only on its own data.
    pub fn fingerprint(&self) -> u64 {
        const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
        let [channels, height, width] = self.image_shape();
        let header = [channels, height, width, self.shape.num_classes].map(|d| d as u32);
        let words = header
            .into_iter()
            .chain(self.images.iter().map(|x| x.to_bits()))
            .chain(self.labels.iter().map(|&l| u32::from(l)));
        words.fold(FNV_OFFSET, |h, w| {
            (h ^ u64::from(w)).wrapping_mul(FNV_PRIME)
        })
    }

    /// The number of classes; labels are `0..num_classes`.
    pub fn num_classes(&self) -> usize {
        self.shape.num_classes
    }

    /// The pixels of sample `index` (`C x H x W`, row-major).
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    pub fn image(&self, index: usize) -> &[f32] {
        assert!(
            index < self.len(),
            "sample index {index} out of range for a dataset of {}",
            self.len()
        );
        let n = self.image_len();
        &self.images[index * n..(index + 1) * n]
    }

    /// The label of sample `index`.
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    pub fn label(&self, index: usize) -> u8 {
        self.labels[index]
    }

    /// How many samples each class has (`num_classes()` entries).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.shape.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Gathers the samples at `indices` into a batch: the images
    /// concatenated (`indices.len() x C x H x W`) and the labels as `u32`.
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    pub fn batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<u32>) {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        let mut labels = Vec::with_capacity(indices.len());
        self.batch_into(indices, &mut images, &mut labels);
        (images, labels)
    }

    /// As [`Dataset::batch`], but writes into caller-owned buffers (cleared
    /// first) so that a training loop can reuse their allocations.
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    pub fn batch_into(&self, indices: &[usize], images: &mut Vec<f32>, labels: &mut Vec<u32>) {
        images.clear();
        labels.clear();
        images.reserve(indices.len() * self.image_len());
        labels.reserve(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(u32::from(self.labels[i]));
        }
    }

    /// A new dataset holding the samples at `indices`, in that order.
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let (images, _) = self.batch(indices);
        self.with_data(images, indices.iter().map(|&i| self.labels[i]).collect())
    }

    /// A new dataset holding the first `n` samples (all of them if
    /// `n >= len()`), e.g. for quick runs.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.with_data(
            self.images[..n * self.image_len()].to_vec(),
            self.labels[..n].to_vec(),
        )
    }

    /// Concatenates datasets with the same image shape and class count.
    ///
    /// Errors with [`DataError::Malformed`] (named `"dataset"`) if `parts` is
    /// empty or the parts' shapes or class counts differ.
    pub fn concat(parts: &[Dataset]) -> Result<Dataset, DataError> {
        let first = parts
            .first()
            .ok_or_else(|| DataError::malformed("dataset", "cannot concatenate zero datasets"))?;
        let mut images = Vec::with_capacity(parts.iter().map(|p| p.images.len()).sum());
        let mut labels = Vec::with_capacity(parts.iter().map(Dataset::len).sum());
        for (i, p) in parts.iter().enumerate() {
            if p.shape != first.shape {
                return Err(DataError::malformed(
                    "dataset",
                    format!(
                        "cannot concatenate: part {i} has shape {:?} and {} classes, part 0 has {:?} and {}",
                        p.image_shape(),
                        p.shape.num_classes,
                        first.image_shape(),
                        first.shape.num_classes
                    ),
                ));
            }
            images.extend_from_slice(&p.images);
            labels.extend_from_slice(&p.labels);
        }
        Ok(first.with_data(images, labels))
    }

    /// A dataset with this one's shape and class count but other samples
    /// (the caller guarantees consistency).
    fn with_data(&self, images: Vec<f32>, labels: Vec<u8>) -> Dataset {
        debug_assert_eq!(images.len(), labels.len() * self.image_len());
        Dataset {
            images,
            labels,
            shape: self.shape,
        }
    }
}

/// Maps bytes to `f32` in `[0, 1]` (`b / 255`).
pub(crate) fn u8_to_unit_f32(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&b| f32::from(b) / 255.0).collect()
}

/// Checks that every label is `< num_classes`, naming `file` in the error.
pub(crate) fn check_labels(labels: &[u8], num_classes: usize, file: &str) -> Result<(), DataError> {
    match labels.iter().position(|&l| usize::from(l) >= num_classes) {
        Some(index) => Err(DataError::LabelOutOfRange {
            file: file.to_owned(),
            index,
            label: labels[index],
            num_classes,
        }),
        None => Ok(()),
    }
}
