//! Training sessions on text: a tiny LLaMA learns a small corpus, evaluates on its
//! validation windows, checkpoints with its vocabulary and resumes exactly; the wrong
//! data for a model is a typed error.

mod common;

use std::sync::Arc;

use common::*;
use coptim::Error;
use coptim::data::text::TextCorpus;
use coptim::model::Llama;
use coptim::train::{ModelSpec, OptimizerKind, Session, TrainConfig, TrainData};

/// A few kilobytes of repetitive text: a model learns it within tens of steps.
fn text() -> String {
    let lines = [
        "the cat sat on the mat and the dog sat on the log.\n",
        "a bird in the hand is worth two in the bush.\n",
        "to be or not to be, that is the question.\n",
    ];
    (0..40).map(|i| lines[i % 3]).collect()
}

const CONTEXT: usize = 16;

fn corpus(text: &str) -> Arc<TextCorpus> {
    Arc::new(TextCorpus::parse(text.as_bytes(), "small.txt", CONTEXT, None).unwrap())
}

/// A tiny LLaMA run of `steps` steps on `corpus`.
fn run(corpus: &TextCorpus, optimizer: OptimizerKind, steps: u64) -> TrainConfig {
    let model = ModelSpec::Llama(Llama {
        vocab: corpus.vocab().len(),
        context: CONTEXT,
        dim: 32,
        depth: 1,
        heads: 2,
        ffn_hidden: 64,
        ..Llama::default()
    });
    TrainConfig {
        lr: 1e-2,
        batch_size: 8,
        eval_batch_size: 16,
        ..TrainConfig::for_model(model, optimizer).with_steps(steps)
    }
}

#[test]
fn a_tiny_llama_learns_a_small_text_and_resumes_exactly() {
    let ctx = ctx();
    let data = corpus(&text());
    let config = run(&data, OptimizerKind::C_ADAMW, 40);
    assert_eq!(
        config.clip_grad_norm,
        Some(1.0),
        "the llama preset clips at 1"
    );
    let mut s = Session::new(&ctx, config.clone(), data.clone()).unwrap();
    s.run_blocking(|_| {}).unwrap();
    let h = s.history().clone();
    // HF's small initialization starts at the uniform loss, ln(vocab).
    let uniform = (data.vocab().len() as f32).ln();
    let first = h.steps[0].loss;
    let last = h.steps[35..].iter().map(|m| m.loss).sum::<f32>() / 5.0;
    assert!(
        (first - uniform).abs() < 0.05 && last < 0.5 * uniform,
        "train loss {first} (uniform {uniform}) -> {last}"
    );
    // Evaluations every 4 steps, over every validation window, in nats per token.
    assert_eq!(h.evals.len(), 10);
    let val = h.last_eval().unwrap().loss;
    assert!(
        val < data.bigram_val_loss(),
        "val {val} vs bigram {}",
        data.bigram_val_loss()
    );

    // Stop at step 20, save, resume: the rest is bit for bit the straight run's.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut resumed = common::session::stop_and_resume(&ctx, config, data.clone(), 20, &path);
    resumed.run_blocking(|_| {}).unwrap();
    let losses = |h: &coptim::train::History| h.steps.iter().map(|m| m.loss).collect::<Vec<_>>();
    assert_eq!(losses(resumed.history()), losses(&h));
    assert_eq!(resumed.history().last_eval().unwrap().loss, val);

    // The same checkpoint with a text of another vocabulary names the characters.
    let other = corpus(&text().replace('q', "Q").replace('z', "Z"));
    match Session::resume(&ctx, other, &path) {
        Err(Error::Checkpoint { reason, .. }) => {
            assert!(
                reason.contains("vocabulary")
                    && reason.contains("\"q\"")
                    && reason.contains("\"Q\""),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The same vocabulary but other text: the fingerprint differs.
    let shuffled = corpus(&text().chars().rev().collect::<String>());
    assert!(matches!(
        Session::resume(&ctx, shuffled, &path),
        Err(Error::Checkpoint { .. })
    ));
}

#[test]
fn the_wrong_data_for_a_model_is_a_typed_error() {
    let ctx = ctx();
    let data = corpus(&text());
    let good = run(&data, OptimizerKind::ADAMW, 2);
    let with = |f: &dyn Fn(&mut Llama)| {
        let mut c = good.clone();
        let ModelSpec::Llama(l) = &mut c.model else {
            unreachable!()
        };
        f(l);
        c
    };
    let cases = [
        (with(&|l| l.context = CONTEXT + 1), "context"),
        (with(&|l| l.vocab = 3), "vocabulary"),
    ];
    for (config, needle) in cases {
        match Session::new(&ctx, config, data.clone()) {
            Err(Error::InvalidConfig(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // An image model on text, and the language model on images.
    let mlp = TrainConfig::mlp(OptimizerKind::ADAMW);
    assert!(matches!(
        Session::new(&ctx, mlp, data.clone()),
        Err(Error::InvalidConfig(m)) if m.contains("Images") && m.contains("Tokens")
    ));
    assert!(matches!(
        Session::new(&ctx, good.clone(), bundled_subset(64, 16)),
        Err(Error::InvalidConfig(m)) if m.contains("Tokens")
    ));
    // `for_data` takes the text's vocabulary.
    let fitted = TrainConfig {
        model: ModelSpec::Llama(Llama {
            context: CONTEXT,
            ..Llama::default()
        }),
        ..good
    }
    .for_data(&TrainData::Text(data.clone()));
    let ModelSpec::Llama(l) = &fitted.model else {
        unreachable!()
    };
    assert_eq!(l.vocab, data.vocab().len());
    Session::new(&ctx, fitted, data).unwrap();
}
