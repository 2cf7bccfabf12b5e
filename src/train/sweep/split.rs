//! The data of a sweep: a validation split held out of the training split, so the
//! learning rates are chosen without looking at the test split, which only the final
//! report reads.

use std::sync::Arc;

use crate::data::DatasetSplit;
use crate::error::{Error, Result};
use crate::train::source::TrainData;

/// Every this-many-th training image (index `i` with `i % STRIDE == STRIDE - 1`)
/// is held out for validation: 10%, spread over the file whatever its order.
pub const VALIDATION_STRIDE: usize = 10;

/// A sweep's two views of one data set. Both train on the same samples.
#[derive(Debug, Clone)]
pub struct SweepData {
    /// Training plus the held-out validation split as the evaluation set: what the
    /// learning rates are chosen on.
    pub tuning: TrainData,
    /// Training plus the untouched test split (text: the corpus's own validation
    /// text) as the evaluation set: read once per run, after its last step, for
    /// the final report only.
    pub test: TrainData,
    /// How the validation split was made, for reports.
    pub split: String,
}

impl SweepData {
    /// Holds validation out of `data`'s training split. Images: every
    /// [`VALIDATION_STRIDE`]-th training image. Text: the last 10% of the training
    /// split by position ([`TextCorpus::hold_out_validation`](crate::data::text::TextCorpus::hold_out_validation)).
    pub fn hold_out(data: &TrainData) -> Result<Self> {
        match data {
            TrainData::Images(d) => hold_out_images(d),
            TrainData::Text(c) => {
                let (tuning, test) = c.hold_out_validation()?;
                let split = format!(
                    "text: train on the first 90% of the training split ({} tokens), validate on its last 10% ({} tokens), test on the validation split ({} tokens)",
                    tuning.train().len(),
                    tuning.validation().len(),
                    test.validation().len()
                );
                Ok(Self {
                    tuning: TrainData::Text(Arc::new(tuning)),
                    test: TrainData::Text(Arc::new(test)),
                    split,
                })
            }
        }
    }

    /// A fingerprint of both views (results files record it through the
    /// configuration hash).
    pub fn fingerprint(&self) -> u64 {
        self.tuning.fingerprint().rotate_left(7) ^ self.test.fingerprint()
    }
}

fn hold_out_images(d: &DatasetSplit) -> Result<SweepData> {
    let (held, kept): (Vec<usize>, Vec<usize>) =
        (0..d.train.len()).partition(|i| i % VALIDATION_STRIDE == VALIDATION_STRIDE - 1);
    if held.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "a sweep holds every {VALIDATION_STRIDE}th training image out for validation, but the training set has only {}",
            d.train.len()
        )));
    }
    let train = d.train.subset(&kept);
    let validation = d.train.subset(&held);
    let split = format!(
        "images: every {VALIDATION_STRIDE}th training image held out for validation ({} of {}), {} train, {} test images untouched until the report",
        held.len(),
        d.train.len(),
        kept.len(),
        d.test.len()
    );
    Ok(SweepData {
        tuning: TrainData::Images(Arc::new(DatasetSplit {
            train: train.clone(),
            test: validation,
        })),
        test: TrainData::Images(Arc::new(DatasetSplit {
            train,
            test: d.test.clone(),
        })),
        split,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, SampleShape};

    /// `n` 1x1 images whose pixel is their index, labelled `index % 10`.
    fn numbered(n: usize) -> Dataset {
        let shape = SampleShape {
            channels: 1,
            height: 1,
            width: 1,
            num_classes: 10,
        };
        let pixels: Vec<u8> = (0..n as u8).collect();
        Dataset::from_u8(&pixels, (0..n as u8).map(|i| i % 10).collect(), shape).unwrap()
    }

    fn pixels(d: &Dataset) -> Vec<f32> {
        d.images().iter().map(|p| (p * 255.0).round()).collect()
    }

    #[test]
    fn every_tenth_training_image_validates_and_the_test_set_is_kept() {
        let data = TrainData::Images(Arc::new(DatasetSplit {
            train: numbered(25),
            test: numbered(3),
        }));
        let split = SweepData::hold_out(&data).unwrap();
        let (TrainData::Images(tuning), TrainData::Images(test)) = (&split.tuning, &split.test)
        else {
            panic!("image data stays image data");
        };
        assert_eq!(pixels(&tuning.test), [9.0, 19.0]);
        let train = pixels(&tuning.train);
        assert_eq!(train.len(), 23);
        assert!(!train.contains(&9.0) && !train.contains(&19.0));
        assert_eq!(tuning.train, test.train);
        assert_eq!(test.test, numbered(3));
        let err = SweepData::hold_out(&TrainData::Images(Arc::new(DatasetSplit {
            train: numbered(9),
            test: numbered(3),
        })));
        assert!(err.unwrap_err().to_string().contains("only 9"));
    }
}
