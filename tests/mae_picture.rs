//! The reconstruction picture of `coptim compare --model mae`: a tiny masked
//! autoencoder compared for a few steps on lavapipe gives both runs'
//! reconstructions of the same masked test digits, and `reconstructions.png` is
//! written at the size its layout says.

mod common;

use common::model::tiny_digit_mae;
use common::*;
use coptim::train::compare::{CompareConfig, compare};
use coptim::train::reconstruction::SHOWN_IMAGES;
use coptim::train::reconstruction_chart::{picture_size, write_reconstructions};
use coptim::train::{ModelSpec, OptimizerKind, TrainConfig};

/// The width and height a PNG file's header gives.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn compare_draws_both_runs_reconstructions_of_the_same_masked_digits() {
    let ctx = ctx();
    let mut run = TrainConfig::for_model(ModelSpec::Mae(tiny_digit_mae()), OptimizerKind::ADAMW)
        .with_steps(6);
    run.batch_size = 32;
    run.eval_batch_size = 64;
    let config = CompareConfig::new(run, 1, "bundled-mnist (256)");
    let summary = compare(&ctx, bundled_subset(256, 64), &config, |_| {}).unwrap();
    let shown = summary
        .reconstructions
        .as_ref()
        .expect("an MAE comparison reconstructs");
    assert_eq!(shown.shape, [1, 28, 28]);
    assert_eq!(shown.count(), SHOWN_IMAGES);
    let test = bundled_subset(256, 64).test.images()[..SHOWN_IMAGES * 784].to_vec();
    assert_eq!(shown.images, test, "the first test digits, as given");
    let mut removed_differ = [0usize; 2];
    for (r, run) in shown.runs.iter().enumerate() {
        assert_eq!(run.len(), test.len());
        for (i, (&got, &given)) in run.iter().zip(&test).enumerate() {
            assert!(
                (0.0..=1.0).contains(&got),
                "run {r} pixel {i}: {got} is shown in [0, 1]"
            );
            match shown.is_removed(i / 784, i % 784) {
                // Standardized and back: a few ulps.
                false => assert!(
                    (got - given).abs() < 1e-5,
                    "run {r} pixel {i}: visible as given"
                ),
                true => removed_differ[r] += usize::from((got - given).abs() > 1e-3),
            }
        }
    }
    // 12 of 16 patches of 49 pixels removed per image. A blank patch comes back blank
    // (un-normalized with its true mean and a spread of sqrt(1e-6)); about half of a
    // digit's patches hold ink, and a 6-step model does not draw them exactly.
    let removed = SHOWN_IMAGES * 12 * 49;
    assert!(
        removed_differ.iter().all(|&d| d > removed / 4),
        "{removed_differ:?} of {removed}"
    );
    assert_ne!(
        shown.runs[0], shown.runs[1],
        "the two optimizers' models differ"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = write_reconstructions(&summary, dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(path, dir.path().join("reconstructions.png"));
    let size = png_size(&std::fs::read(&path).unwrap());
    assert_eq!(size, picture_size(SHOWN_IMAGES, 28, 28));
    assert_eq!(size, (1098, 576));

    // A classifier's comparison has no picture and writes none.
    let mut classifier = summary.clone();
    classifier.reconstructions = None;
    let other = tempfile::tempdir().unwrap();
    assert_eq!(
        write_reconstructions(&classifier, other.path()).unwrap(),
        None
    );
    assert!(!other.path().join("reconstructions.png").exists());
}
