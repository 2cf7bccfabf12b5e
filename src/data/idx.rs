//! Reader (and a small writer) for the IDX format used by MNIST.
//!
//! An IDX file is a big-endian header followed by the data:
//!
//! ```text
//! magic:  0x00 0x00 <type> <ndims>     type 0x08 = unsigned byte
//! dims:   ndims x u32 (big-endian)
//! data:   prod(dims) elements, row-major
//! ```
//!
//! MNIST images are `0x00000803` (u8, 3-d: count x rows x cols) and labels
//! `0x00000801` (u8, 1-d: count). Only the unsigned-byte element type is
//! supported. Files may be gzipped; compression is detected from the gzip
//! magic bytes (`1f 8b`), not from the file name.

use std::borrow::Cow;
use std::io::Read;

use super::error::DataError;

/// Magic number of an IDX file of u8 images (3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels (1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
/// The IDX element-type byte for unsigned bytes.
pub const IDX_TYPE_U8: u8 = 0x08;

/// The two magic bytes that start every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A parsed IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (for MNIST images:
    /// `[count, rows, cols]`).
    pub dims: Vec<usize>,
    /// The elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The magic number this array would have in a file (`0x000008nn`, with
    /// `nn` the number of dimensions).
    pub fn magic(&self) -> u32 {
        (u32::from(IDX_TYPE_U8) << 8) | self.dims.len() as u32
    }

    /// Encodes the array as an uncompressed IDX file.
    ///
    /// # Panics
    ///
    /// If there are more than 255 dimensions, a dimension exceeds `u32::MAX`,
    /// or `data.len()` is not the product of the dimensions.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_idx(&self.dims, &self.data)
    }
}

/// Returns `true` if `bytes` starts with the gzip magic bytes.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The most bytes a gzipped file may decompress to (1 GiB: the largest IDX set in
/// use, EMNIST's training images, is about 550 MB), so that a small crafted file
/// cannot exhaust memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Returns `bytes` decompressed if they are gzip, or unchanged (borrowed)
/// otherwise. `file` names the source in error messages.
///
/// Concatenated gzip members are decompressed as one stream. A stream that
/// inflates past [`MAX_DECOMPRESSED_BYTES`] is [`DataError::Malformed`].
pub fn decompress_if_gzip<'a>(bytes: &'a [u8], file: &str) -> Result<Cow<'a, [u8]>, DataError> {
    inflate(bytes, file, MAX_DECOMPRESSED_BYTES)
}

fn inflate<'a>(bytes: &'a [u8], file: &str, limit: u64) -> Result<Cow<'a, [u8]>, DataError> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            file: file.to_owned(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(DataError::malformed(
            file,
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(Cow::Owned(out))
}

/// Parses an IDX file of unsigned bytes with any number of dimensions,
/// gzipped or raw.
///
/// `file` names the source in error messages. Errors: [`DataError::Gzip`],
/// [`DataError::Truncated`] (header or data shorter than declared),
/// [`DataError::BadMagic`] (not `0x000008nn` with `nn >= 1`) and
/// [`DataError::Malformed`] (trailing bytes, size overflow).
///
/// ```
/// use coptim::data::idx::{encode_idx, parse_idx};
///
/// let bytes = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
/// let array = parse_idx(&bytes, "example.idx")?;
/// assert_eq!(array.dims, vec![2, 3]);
/// assert_eq!(array.data, vec![1, 2, 3, 4, 5, 6]);
/// # Ok::<(), coptim::data::DataError>(())
/// ```
pub fn parse_idx(bytes: &[u8], file: &str) -> Result<IdxArray, DataError> {
    parse_idx_impl(bytes, file, None)
}

/// Parses an IDX file of u8 images (magic `0x00000803`: count x rows x
/// cols), gzipped or raw. A file with any other magic is
/// [`DataError::BadMagic`]; otherwise as [`parse_idx`].
pub fn parse_idx_images(bytes: &[u8], file: &str) -> Result<IdxArray, DataError> {
    parse_idx_impl(
        bytes,
        file,
        Some((IDX_IMAGES_MAGIC, "IDX u8 images, 3 dimensions")),
    )
}

/// Parses an IDX file of u8 labels (magic `0x00000801`: count), gzipped or
/// raw. A file with any other magic is [`DataError::BadMagic`]; otherwise
/// as [`parse_idx`].
pub fn parse_idx_labels(bytes: &[u8], file: &str) -> Result<IdxArray, DataError> {
    parse_idx_impl(
        bytes,
        file,
        Some((IDX_LABELS_MAGIC, "IDX u8 labels, 1 dimension")),
    )
}

/// Reads and parses an IDX file of unsigned bytes from disk (gzipped or
/// raw); see [`parse_idx`]. A nonexistent path is
/// [`DataError::MissingFile`].
#[cfg(not(target_arch = "wasm32"))]
pub fn read_idx(path: impl AsRef<std::path::Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    parse_idx(&bytes, &path.display().to_string())
}

/// Encodes `data` with dimensions `dims` as an uncompressed u8 IDX file.
///
/// # Panics
///
/// If `dims` is empty or has more than 255 entries, a dimension exceeds
/// `u32::MAX`, or `data.len()` is not the product of `dims`.
///
/// ```
/// let labels = coptim::data::idx::encode_idx(&[3], &[7, 2, 1]);
/// assert_eq!(labels, [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]);
/// ```
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    assert!(
        !dims.is_empty() && dims.len() <= 255,
        "IDX needs 1 to 255 dimensions, got {}",
        dims.len()
    );
    let count: usize = dims.iter().product();
    assert_eq!(
        count,
        data.len(),
        "IDX data length {} does not match dimensions {dims:?}",
        data.len()
    );
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, IDX_TYPE_U8, dims.len() as u8]);
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimension exceeds u32::MAX");
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Parses possibly gzipped IDX `bytes` (named `file` in errors), checking the
/// magic number against `expect` (any u8 IDX magic when `None`).
fn parse_idx_impl(
    bytes: &[u8],
    file: &str,
    expect: Option<(u32, &'static str)>,
) -> Result<IdxArray, DataError> {
    let decompressed = decompress_if_gzip(bytes, file)?;
    check_magic(&decompressed, file, expect)?;
    let (dims, header_len) = read_dims(&decompressed, file)?;
    check_data_len(&dims, header_len, decompressed.len() as u64, file)?;
    let data = match decompressed {
        Cow::Borrowed(raw) => raw[header_len..].to_vec(),
        Cow::Owned(mut owned) => {
            owned.drain(..header_len);
            owned
        }
    };
    Ok(IdxArray { dims, data })
}

/// Checks the 4-byte magic number: the `expect`ed one, or any u8 IDX magic
/// with at least one dimension when `expect` is `None`.
fn check_magic(
    bytes: &[u8],
    file: &str,
    expect: Option<(u32, &'static str)>,
) -> Result<(), DataError> {
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            file: file.to_owned(),
            expected: 4,
            actual: bytes.len() as u64,
        });
    }
    let magic = be_u32(&bytes[0..4]);
    match expect {
        Some((expected, what)) if magic != expected => Err(DataError::BadMagic {
            file: file.to_owned(),
            expected,
            found: magic,
            what,
        }),
        None if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != IDX_TYPE_U8 || bytes[3] == 0 => {
            Err(DataError::BadMagic {
                file: file.to_owned(),
                expected: u32::from(IDX_TYPE_U8) << 8,
                found: magic,
                what: "IDX u8 data, 0x000008nn with nn >= 1 dimensions",
            })
        }
        _ => Ok(()),
    }
}

/// Reads the dimensions after a checked magic number; gives them and the
/// header length in bytes.
fn read_dims(bytes: &[u8], file: &str) -> Result<(Vec<usize>, usize), DataError> {
    let ndims = usize::from(bytes[3]);
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::Truncated {
            file: file.to_owned(),
            expected: header_len as u64,
            actual: bytes.len() as u64,
        });
    }
    let dims = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| be_u32(c) as usize)
        .collect();
    Ok((dims, header_len))
}

/// Checks that a file of `actual` bytes holds exactly the header plus the data
/// that `dims` describe.
fn check_data_len(
    dims: &[usize],
    header_len: usize,
    actual: u64,
    file: &str,
) -> Result<(), DataError> {
    // Compute the expected size in u64 so that it cannot overflow on 32-bit
    // targets for any header (255 dims of up to 2^32 each can overflow even
    // u64, hence checked).
    let data_len = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| {
            DataError::malformed(
                file,
                format!("dimensions {dims:?} overflow the element count"),
            )
        })?;
    let expected = (header_len as u64).checked_add(data_len).ok_or_else(|| {
        DataError::malformed(file, format!("dimensions {dims:?} overflow the file size"))
    })?;
    if actual < expected {
        return Err(DataError::Truncated {
            file: file.to_owned(),
            expected,
            actual,
        });
    }
    if actual > expected {
        return Err(DataError::malformed(
            file,
            format!(
                "{} trailing bytes after the data (dimensions {dims:?} need {expected} bytes, file has {actual})",
                actual - expected
            ),
        ));
    }
    Ok(())
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads a whole file, mapping "not found" to [`DataError::MissingFile`] and
/// any other failure to [`DataError::Io`].
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_owned(),
                tried: vec![path.to_owned()],
            }
        } else {
            DataError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_inflating_past_the_limit_is_refused() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 3 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 16 << 10, "{} bytes", bomb.len());
        let err = inflate(&bomb, "bomb.gz", 1 << 20).unwrap_err();
        assert!(
            err.to_string().contains("decompresses to more than"),
            "{err}"
        );
        assert_eq!(inflate(&bomb, "bomb.gz", 3 << 20).unwrap().len(), 3 << 20);
    }
}
