//! Integration tests of `coptim::data::text`: the bundled corpus, the
//! vocabulary, deterministic windows, the bigram yardstick and every kind of
//! bad text input.

use std::path::Path;

use coptim::data::DataError;
use coptim::data::batcher::{epoch_rng, uniform_below};
use coptim::data::text::{
    BIGRAM_SMOOTHING, BUNDLED_TRAIN_NAME, BUNDLED_VALIDATION_NAME, Bigram, TextCorpus, TextProblem,
    Vocab, bundled_shakespeare, nats_to_bits,
};

/// f64 results that differ from their closed form only by the rounding of a
/// few logarithms and sums: a few ulps.
const F64_ROUNDING: f64 = 1e-14;

/// The problem of a [`DataError::Text`] and the file it names; panics on any
/// other error.
fn text_problem(err: DataError) -> (String, TextProblem) {
    match err {
        DataError::Text { file, problem } => (file, problem),
        other => panic!("expected a text error, got {other:?}"),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------- bundled corpus

#[test]
fn bundled_corpus_is_split_by_play() {
    let corpus = bundled_shakespeare(256, None).unwrap();
    // Sizes as recorded in data/shakespeare/manifest.json (ASCII: one character per byte).
    assert_eq!(corpus.train().len(), 1_267_730);
    assert_eq!(corpus.validation().len(), 219_613);
    assert_eq!(corpus.vocab().len(), 73);
    assert!(corpus.vocab().chars().iter().all(char::is_ascii));
    assert_eq!(corpus.train().name(), BUNDLED_TRAIN_NAME);
    assert_eq!(corpus.validation().name(), BUNDLED_VALIDATION_NAME);

    let train = corpus.vocab().decode(corpus.train().tokens()).unwrap();
    let validation = corpus.vocab().decode(corpus.validation().tokens()).unwrap();
    // Every validation character also occurs in training.
    assert_eq!(&Vocab::of_texts(&[&train]), corpus.vocab());
    assert!(validation.starts_with("JULIUS CAESAR\n\nby William Shakespeare\n"));
    assert!(validation.contains("\n\nMACBETH\n\nby William Shakespeare\n"));
    assert!(train.starts_with("ANTONY AND CLEOPATRA\n"));
    for title in [
        "HAMLET, PRINCE OF DENMARK",
        "THE TRAGEDY OF KING LEAR",
        "CYMBELINE",
    ] {
        assert!(
            train.contains(&format!("{title}\n\nby William Shakespeare\n")),
            "{title}"
        );
    }
    // No validation play leaks into training.
    for title in ["JULIUS CAESAR\n\nby", "MACBETH\n\nby"] {
        assert!(!train.contains(title), "{title}");
    }
    for text in [&train, &validation] {
        assert!(!text.to_lowercase().contains("gutenberg"));
        assert!(text.ends_with("Exeunt.]\n") && !text.ends_with("\n\n"));
    }
}

#[test]
fn bundled_corpus_with_a_foreign_vocabulary_names_the_first_missing_character() {
    let vocab = Vocab::of_texts(&["ABCDEFGHIJKLMNOPQRSTUVWXYZ \n"]);
    let (file, problem) = text_problem(bundled_shakespeare(8, Some(&vocab)).unwrap_err());
    assert_eq!(file, BUNDLED_TRAIN_NAME);
    // "ANTONY AND CLEOPATRA\n\nby William": 'b' at line 3, column 1.
    assert_eq!(
        problem,
        TextProblem::OutOfVocabulary {
            character: 'b',
            line: 3,
            column: 1,
            vocab_size: 28,
        }
    );
}

// ---------------------------------------------------------------- the bigram yardstick

#[test]
fn bigram_matches_a_hand_computed_case() {
    // Train "abab", validation "abca", vocabulary {a, b, c}, k = 1:
    // counts a->b 2, b->a 1; a is followed twice, b once, c never.
    // p(b|a) = (2+1)/(2+3) = 3/5, p(c|b) = (0+1)/(1+3) = 1/4, p(a|c) = (0+1)/(0+3) = 1/3,
    // so the loss is (ln 5/3 + ln 4 + ln 3) / 3 = ln(20) / 3.
    assert_eq!(BIGRAM_SMOOTHING, 1.0);
    let corpus = TextCorpus::from_splits(("abab", "t"), ("abca", "v"), 1, None).unwrap();
    let loss = corpus.bigram_val_loss();
    assert!((loss - 20f64.ln() / 3.0).abs() < F64_ROUNDING, "{loss}");
    assert!((nats_to_bits(loss) - 20f64.log2() / 3.0).abs() < F64_ROUNDING);

    // k = 1/2: p(b|a) = 2.5/3.5, p(c|b) = 0.5/2.5, p(a|c) = 0.5/1.5.
    let half = Bigram::fit(&[0, 1, 0, 1], 3, 0.5);
    let expected = -((2.5f64 / 3.5).ln() + (0.5f64 / 2.5).ln() + (0.5f64 / 1.5).ln()) / 3.0;
    assert!((half.mean_nll(&[0, 1, 2, 0]) - expected).abs() < F64_ROUNDING);
    // Each row of the model is a distribution.
    for prev in 0..3 {
        let total: f64 = (0..3).map(|next| half.prob(prev, next)).sum();
        assert!((total - 1.0).abs() < F64_ROUNDING, "row {prev}: {total}");
    }
}

#[test]
fn bundled_bigram_yardstick_agrees_with_a_plain_sum() {
    let corpus = bundled_shakespeare(256, None).unwrap();
    let loss = corpus.bigram_val_loss();
    let model = Bigram::fit(corpus.train().tokens(), corpus.vocab().len(), 1.0);
    let v = corpus.validation().tokens();
    let plain: f64 = v
        .windows(2)
        .map(|w| -model.prob(w[0], w[1]).ln())
        .sum::<f64>()
        / (v.len() - 1) as f64;
    // Two summation orders over 219,612 terms of size ~2.5: a relative 1e-12 is
    // thousands of times the f64 rounding either accumulates.
    assert!((loss - plain).abs() < 1e-12 * plain, "{loss} vs {plain}");
    // A bigram of English characters: between the unigram entropy (~3 nats is
    // far above) and the 1.4-1.5 of a trained character transformer.
    assert!((2.3..2.7).contains(&loss), "{loss}");
    println!(
        "bundled bigram_val_loss: {loss:.6} nats/token = {:.6} bits/char",
        nats_to_bits(loss)
    );
}

// ---------------------------------------------------------------- windows

#[test]
fn train_batches_are_windows_determined_by_seed_and_step() {
    let corpus = bundled_shakespeare(32, None).unwrap();
    let batch = corpus.train_batch(7, 3, 5);
    assert_eq!(batch, corpus.train_batch(7, 3, 5));
    assert_ne!(batch.starts, corpus.train_batch(7, 4, 5).starts);
    assert_ne!(batch.starts, corpus.train_batch(8, 3, 5).starts);
    // The specification: draw r of uniform_below(len - context) from stream `step`.
    let mut rng = epoch_rng(7, 3);
    let positions = (corpus.train().len() - 32) as u64;
    let expected: Vec<usize> = (0..5)
        .map(|_| uniform_below(&mut rng, positions) as usize)
        .collect();
    assert_eq!(batch.starts, expected);
    // Golden: pins the order across platforms and rand_chacha releases.
    assert_eq!(batch.starts, [230140, 117723, 1241082, 423687, 445236]);

    let tokens = corpus.train().tokens();
    assert_eq!(batch.rows(), 5);
    for (r, &s) in batch.starts.iter().enumerate() {
        assert_eq!(batch.inputs[r * 32..(r + 1) * 32], tokens[s..s + 32]);
        assert_eq!(batch.targets[r * 32..(r + 1) * 32], tokens[s + 1..s + 33]);
    }
}

#[test]
fn train_windows_reach_both_ends_of_a_short_text() {
    // 10 characters, 9 for training; context 4: windows start at 0..=4.
    let corpus = TextCorpus::parse(b"abcdefghij", "short.txt", 4, None);
    let err = corpus.unwrap_err(); // the validation split has one character
    assert!(matches!(
        text_problem(err).1,
        TextProblem::TooShort {
            split: "validation",
            tokens: 1,
            needed: 5
        }
    ));
    let corpus = TextCorpus::from_splits(("abcdefghi", "t"), ("ab", "v"), 1, None).unwrap();
    let mut seen = [false; 8];
    for step in 0..200 {
        for &s in &corpus.train_batch(0, step, 4).starts {
            seen[s] = true;
        }
    }
    assert_eq!(seen, [true; 8], "every start 0..=len-context-1 is drawn");
}

#[test]
fn validation_batches_are_fixed_consecutive_windows() {
    let text = "0123456789abcdefghijklmnopqrstuvwxyz";
    let corpus = TextCorpus::from_splits((text, "t"), (text, "v"), 4, None).unwrap();
    // 36 tokens: windows at 0, 4, .., 28 (the one at 32 would need token 36).
    assert_eq!(corpus.validation_windows(), 8);
    let batches: Vec<_> = corpus.validation_batches(3).collect();
    let starts: Vec<Vec<usize>> = batches.iter().map(|b| b.starts.clone()).collect();
    assert_eq!(starts, [vec![0, 4, 8], vec![12, 16, 20], vec![24, 28]]);
    let targets: Vec<u32> = batches.iter().flat_map(|b| b.targets.clone()).collect();
    assert_eq!(targets, corpus.validation().tokens()[1..33]);
    let again: Vec<_> = corpus.validation_batches(3).collect();
    assert_eq!(batches, again);
}

// ---------------------------------------------------------------- any UTF-8 file

#[test]
fn a_file_splits_90_10_by_character() {
    let dir = tempfile::tempdir().unwrap();
    // 100 characters, 10 of them two-byte: the cut falls on a character.
    let text: String = "é123456789".repeat(10);
    let path = write(dir.path(), "accents.txt", text.as_bytes());
    let corpus = TextCorpus::from_file(&path, 8, None).unwrap();
    assert_eq!((corpus.train().len(), corpus.validation().len()), (90, 10));
    assert_eq!(corpus.vocab().len(), 10);
    let vocab = corpus.vocab();
    assert_eq!(
        vocab.decode(corpus.validation().tokens()).unwrap(),
        "é123456789"
    );
    assert!(corpus.train().name().contains("accents.txt"));

    // A byte-order mark is not a character of the text.
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(text.as_bytes());
    let with_bom = TextCorpus::parse(&bom, "bom.txt", 8, None).unwrap();
    assert_eq!(with_bom.train().tokens(), corpus.train().tokens());
}

#[test]
fn a_text_for_a_checkpoint_is_encoded_with_its_vocabulary() {
    let corpus = bundled_shakespeare(16, None).unwrap();
    let json = serde_json::to_string(corpus.vocab()).unwrap();
    let restored: Vocab = serde_json::from_str(&json).unwrap();
    assert_eq!(&restored, corpus.vocab());
    let other = "To be, or not to be: that is the question.\n".repeat(5);
    let encoded = TextCorpus::parse(other.as_bytes(), "q.txt", 16, Some(&restored)).unwrap();
    assert_eq!(encoded.vocab(), corpus.vocab());
    assert_eq!(
        restored.decode(encoded.train().tokens()).unwrap(),
        other[..encoded.train().len()]
    );
}

#[test]
fn a_serialized_vocabulary_must_be_ascending_and_non_empty() {
    for bad in [
        r#"{"chars":""}"#,
        r#"{"chars":"ba"}"#,
        r#"{"chars":"abb"}"#,
        "{}",
    ] {
        assert!(serde_json::from_str::<Vocab>(bad).is_err(), "{bad}");
    }
    let ok: Vocab = serde_json::from_str(r#"{"chars":"\nab\u00e9"}"#).unwrap();
    assert_eq!(ok.chars(), &['\n', 'a', 'b', 'é']);
    assert_eq!(ok.id('é'), Some(3));
    assert_eq!(ok.decode(&[4]), None);
}

// ---------------------------------------------------------------- bad input

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.txt");
    match TextCorpus::from_file(&path, 8, None).unwrap_err() {
        DataError::MissingFile { path: p, .. } => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_and_bom_only_files_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("empty.txt", &b""[..]), ("bom.txt", "\u{feff}".as_bytes())] {
        let path = write(dir.path(), name, bytes);
        let err = TextCorpus::from_file(&path, 8, None).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
        assert_eq!(text_problem(err).1, TextProblem::Empty);
    }
    let err = TextCorpus::from_splits(("abc", "t"), ("", "v.txt"), 1, None).unwrap_err();
    assert_eq!(text_problem(err), ("v.txt".into(), TextProblem::Empty));
}

#[test]
fn a_file_that_is_not_utf8_names_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    // Latin-1 "café" followed by more text.
    let path = write(
        dir.path(),
        "latin1.txt",
        b"caf\xe9 au lait, and more text here",
    );
    let err = TextCorpus::from_file(&path, 8, None).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("latin1.txt") && message.contains("UTF-8"),
        "{message}"
    );
    assert_eq!(text_problem(err).1, TextProblem::NotUtf8 { offset: 3 });
}

#[test]
fn a_split_shorter_than_one_window_is_refused() {
    let text = "x".repeat(100); // 90 + 10 characters
    let err = TextCorpus::parse(text.as_bytes(), "x.txt", 10, None).unwrap_err();
    assert!(err.to_string().contains("x.txt"), "{err}");
    assert_eq!(
        text_problem(err).1,
        TextProblem::TooShort {
            split: "validation",
            tokens: 10,
            needed: 11
        }
    );
    assert!(TextCorpus::parse(text.as_bytes(), "x.txt", 9, None).is_ok());

    let err = TextCorpus::from_splits(("abc", "t.txt"), ("abcdef", "v"), 3, None).unwrap_err();
    assert_eq!(
        text_problem(err),
        (
            "t.txt".into(),
            TextProblem::TooShort {
                split: "train",
                tokens: 3,
                needed: 4
            }
        )
    );
    // The bundled validation plays hold 219,613 characters.
    let err = bundled_shakespeare(219_613, None).unwrap_err();
    assert_eq!(text_problem(err).0, BUNDLED_VALIDATION_NAME);
    assert!(bundled_shakespeare(219_612, None).is_ok());
}

#[test]
fn characters_outside_a_given_vocabulary_are_refused_with_their_place() {
    let vocab = Vocab::of_texts(&["abc \n"]);
    let text = "abc abc\nab cab\nabc aXc\n".repeat(4);
    let err = TextCorpus::parse(text.as_bytes(), "prompt.txt", 2, Some(&vocab)).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("prompt.txt") && message.contains("'X'"),
        "{message}"
    );
    assert_eq!(
        text_problem(err).1,
        TextProblem::OutOfVocabulary {
            character: 'X',
            line: 3,
            column: 6,
            vocab_size: 5
        }
    );
    // The same text with its own vocabulary is fine.
    assert!(TextCorpus::parse(text.as_bytes(), "prompt.txt", 2, None).is_ok());
}

#[test]
fn a_validation_split_is_held_out_of_the_training_split_for_tuning() {
    let train: String = "abcdefghij".repeat(4);
    let corpus = TextCorpus::from_splits((&train, "t"), ("jihgf", "v"), 2, None).unwrap();
    let (tuning, test) = corpus.hold_out_validation().unwrap();
    let ids = |s: &str| corpus.vocab().encode(s, "x").unwrap();
    // 40 training characters: the first 36 train, the last 4 validate; the test
    // view validates on the corpus's own validation text, untouched.
    assert_eq!(tuning.train().tokens(), &ids(&train[..36])[..]);
    assert_eq!(tuning.validation().tokens(), &ids(&train[36..])[..]);
    assert_eq!(test.train().tokens(), tuning.train().tokens());
    assert_eq!(test.validation().tokens(), corpus.validation().tokens());
    assert_eq!((tuning.vocab(), tuning.context()), (corpus.vocab(), 2));
    // A held-out part shorter than one window (3 tokens) is refused.
    let short = TextCorpus::from_splits(("abcdefghij", "t"), ("abc", "v"), 2, None).unwrap();
    let (_, problem) = text_problem(short.hold_out_validation().unwrap_err());
    assert!(
        matches!(problem, TextProblem::TooShort { .. }),
        "{problem:?}"
    );
}
