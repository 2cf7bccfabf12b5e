//! CIFAR-10, binary version (`cifar-10-binary.tar.gz` from
//! <https://www.cs.toronto.edu/~kriz/cifar.html>).
//!
//! Each batch file is a sequence of 3,073-byte records: one label byte
//! (`0..10`) followed by a 32 x 32 colour image as 3,072 bytes, channel-major
//! (1,024 red, then 1,024 green, then 1,024 blue, each row-major). That is
//! already the `C x H x W` layout of [`Dataset`].

#[cfg(not(target_arch = "wasm32"))]
use super::dataset::DatasetSplit;
use super::dataset::{Dataset, SampleShape, check_labels};
use super::error::DataError;

/// Image height and width of CIFAR-10.
pub const CIFAR10_SIDE: usize = 32;
/// Colour channels of CIFAR-10 (RGB).
pub const CIFAR10_CHANNELS: usize = 3;
/// The number of CIFAR-10 classes.
pub const CIFAR10_NUM_CLASSES: usize = 10;
/// Bytes per image (`3 * 32 * 32`).
pub const CIFAR10_IMAGE_BYTES: usize = CIFAR10_CHANNELS * CIFAR10_SIDE * CIFAR10_SIDE;
/// Bytes per record: the label byte plus the image.
pub const CIFAR10_RECORD_BYTES: usize = 1 + CIFAR10_IMAGE_BYTES;

/// The training batch file names, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file name.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";

/// The CIFAR-10 class names, indexed by label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Parses one CIFAR-10 binary batch (any number of records; the official
/// files hold 10,000) into a `3 x 32 x 32`, 10-class dataset. The bytes may
/// also be gzipped. `file` names the source in errors.
///
/// Errors: [`DataError::Truncated`] if the file is empty or its length is
/// not a multiple of 3,073 (the expected size is that of the last complete
/// record plus one more), [`DataError::LabelOutOfRange`] for a label
/// `>= 10`, and [`DataError::Gzip`].
///
/// ```
/// use coptim::data::cifar::{parse_cifar10_batch, CIFAR10_RECORD_BYTES};
///
/// let mut record = vec![0u8; CIFAR10_RECORD_BYTES];
/// record[0] = 7; // label "horse"
/// let ds = parse_cifar10_batch(&record, "one.bin")?;
/// assert_eq!((ds.len(), ds.label(0), ds.image_shape()), (1, 7, [3, 32, 32]));
/// # Ok::<(), coptim::data::DataError>(())
/// ```
pub fn parse_cifar10_batch(bytes: &[u8], file: &str) -> Result<Dataset, DataError> {
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    append_records(bytes, file, &mut labels, &mut pixels)?;
    cifar_dataset(&pixels, labels, file)
}

/// Validates one batch file and appends its labels and raw pixels.
fn append_records(
    bytes: &[u8],
    file: &str,
    labels: &mut Vec<u8>,
    pixels: &mut Vec<u8>,
) -> Result<(), DataError> {
    let bytes = super::idx::decompress_if_gzip(bytes, file)?;
    let len = bytes.len();
    if len == 0 || len % CIFAR10_RECORD_BYTES != 0 {
        let expected = (len / CIFAR10_RECORD_BYTES + 1) * CIFAR10_RECORD_BYTES;
        return Err(DataError::Truncated {
            file: file.to_owned(),
            expected: expected as u64,
            actual: len as u64,
        });
    }
    let n = len / CIFAR10_RECORD_BYTES;
    let first = labels.len();
    labels.reserve(n);
    pixels.reserve(n * CIFAR10_IMAGE_BYTES);
    for record in bytes.chunks_exact(CIFAR10_RECORD_BYTES) {
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    check_labels(&labels[first..], CIFAR10_NUM_CLASSES, file)
}

fn cifar_dataset(pixels: &[u8], labels: Vec<u8>, file: &str) -> Result<Dataset, DataError> {
    let shape = SampleShape {
        channels: CIFAR10_CHANNELS,
        height: CIFAR10_SIDE,
        width: CIFAR10_SIDE,
        num_classes: CIFAR10_NUM_CLASSES,
    };
    Dataset::from_u8_named(pixels, labels, shape, file)
}

/// Loads CIFAR-10 from a directory holding `data_batch_1.bin` ..
/// `data_batch_5.bin` (training, concatenated in that order) and
/// `test_batch.bin`.
///
/// If `dir` itself lacks `data_batch_1.bin` but has a `cifar-10-batches-bin`
/// subdirectory (the layout after unpacking the official tarball), that is
/// used instead. A missing file is [`DataError::MissingFile`]; other errors
/// as [`parse_cifar10_batch`]. Needs about 737 MB for the decoded `f32`
/// images. Not available on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_cifar10_dir(dir: impl AsRef<std::path::Path>) -> Result<DatasetSplit, DataError> {
    let mut dir = dir.as_ref().to_path_buf();
    let nested = dir.join("cifar-10-batches-bin");
    if !dir.join(CIFAR10_TRAIN_FILES[0]).exists() && nested.is_dir() {
        dir = nested;
    }
    // Gather the raw bytes of all files first and convert to f32 once, so
    // that peak memory is the u8 copy plus the f32 result.
    let load = |names: &[&str]| -> Result<Dataset, DataError> {
        let (mut labels, mut pixels) = (Vec::new(), Vec::new());
        for name in names {
            let path = dir.join(name);
            let bytes = super::idx::read_file(&path)?;
            append_records(
                &bytes,
                &path.display().to_string(),
                &mut labels,
                &mut pixels,
            )?;
        }
        cifar_dataset(&pixels, labels, &dir.join(names[0]).display().to_string())
    };
    let train = load(&CIFAR10_TRAIN_FILES)?;
    let test = load(&[CIFAR10_TEST_FILE])?;
    Ok(DatasetSplit { train, test })
}
