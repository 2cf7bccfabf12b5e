//! Parity with PyTorch for the language model: coptim's LLaMA-style model, from its
//! own initial weights, on its own Shakespeare batches and learning rates, trained
//! for 20 steps with coptim's AdamW and C-AdamW and, in `scripts/llama_torch.py`,
//! with `torch.optim.AdamW` and timm's `cadamw` on a from-scratch PyTorch LLaMA
//! (checked against Hugging Face's `LlamaForCausalLM` there). The committed
//! `tests/parity/llama_losses.json` holds PyTorch's loss at every step; coptim's must
//! be within [`TOLERANCE`] of it.
//!
//! Regenerate with `python3 scripts/llama_torch.py`, which
//! first runs the ignored test `export_llama_parity_inputs` to write the initial
//! weights, the token windows and the learning rates of every step to
//! `target/parity/llama_inputs.safetensors`.

mod common;

use std::sync::Arc;

use common::parity::*;
use coptim::data::text::{TextCorpus, bundled_shakespeare};
use coptim::model::Llama;
use coptim::optim::Algorithm;
use coptim::train::{ModelSpec, OptimizerKind, TrainConfig};
use safetensors::Dtype;

/// Largest allowed |coptim loss - PyTorch loss| / |PyTorch loss| at any step (the
/// issue's target). Both compute in f32 with different summation orders; measured on
/// lavapipe over the 20 steps: 2.9e-7 (AdamW) and 5.2e-5 (C-AdamW). C-AdamW's is
/// larger because the caution mask (`m * g > 0`) flips on elements whose sign rounding
/// decides, a discrete jump that later steps carry: PyTorch against itself with only
/// the attention's summation order changed (sdpa instead of explicit softmax) differs
/// by 1.4e-7 (AdamW) and 5.2e-5 (C-AdamW) on the same inputs. A model change fails
/// it: RMSNorm eps 1e-5 instead of 1e-6 is off by 2.6e-4 at step 2.
const TOLERANCE: LossTolerance = LossTolerance::Relative(1e-4);
const STEPS: u64 = 20;
const CONTEXT: usize = 32;

/// The parity run: the bundled Shakespeare's 73 characters, width 64, 2 blocks of
/// 4 heads, SwiGLU hidden 176, untied head, context 32, 8 windows a step, peak
/// learning rate 3e-3 with 2 warm-up steps then cosine to 10%, clipping at 1,
/// no weight decay, seed 0.
fn config(optimizer: OptimizerKind) -> TrainConfig {
    let model = ModelSpec::Llama(Llama {
        context: CONTEXT,
        ffn_hidden: 176,
        ..Llama::default()
    });
    let mut c = TrainConfig::for_model(model, optimizer).with_steps(STEPS);
    c.lr = 3e-3;
    c.weight_decay = 0.0;
    c.warmup_steps = 2;
    c.lr_floor = 0.1;
    c.clip_grad_norm = Some(1.0);
    c.batch_size = 8;
    c.seed = 0;
    // Parity compares training losses; one small evaluation at the end keeps it cheap.
    c.eval_every = 0;
    c.eval_windows = Some(8);
    c
}

fn corpus() -> Arc<TextCorpus> {
    Arc::new(bundled_shakespeare(CONTEXT, None).unwrap())
}

/// The token windows of every step, `[steps, batch, context + 1]` row-major: each
/// row's inputs followed by its last target.
fn step_windows(cfg: &TrainConfig, corpus: &TextCorpus) -> Vec<u32> {
    let mut tokens = Vec::new();
    for step in 1..=cfg.steps {
        let batch = corpus.train_batch(cfg.seed, step, cfg.batch_size);
        for (inputs, targets) in batch
            .inputs
            .chunks_exact(CONTEXT)
            .zip(batch.targets.chunks_exact(CONTEXT))
        {
            assert_eq!(
                inputs[1..],
                targets[..CONTEXT - 1],
                "targets are shifted inputs"
            );
            tokens.extend_from_slice(inputs);
            tokens.push(targets[CONTEXT - 1]);
        }
    }
    tokens
}

#[test]
fn llama_loss_matches_pytorch_at_every_step() {
    let reference = read_reference("llama_losses.json", "scripts/llama_torch.py");
    let cfg = config(OptimizerKind::ADAMW);
    let data = corpus();
    let tokens_sum: u64 = step_windows(&cfg, &data)
        .iter()
        .map(|&t| u64::from(t))
        .sum();
    assert_eq!(
        reference["tokens_sum"].as_u64(),
        Some(tokens_sum),
        "the batches changed"
    );
    let lrs: Vec<f64> = serde_json::from_value(reference["lrs"].clone()).unwrap();
    for (ours, theirs) in step_lrs(&cfg).iter().zip(&lrs) {
        assert!(
            (ours - theirs).abs() <= 1e-9 * ours,
            "lr {ours} vs {theirs}"
        );
    }
    for (kind, key) in [
        (OptimizerKind::ADAMW, "adamw"),
        (OptimizerKind::C_ADAMW, "cadamw"),
    ] {
        let (ours, init_sums) = run_losses(&config(kind), data.clone());
        assert_init_sums(&reference, &init_sums);
        assert_losses_match(&reference, key, &ours, TOLERANCE);
    }
}

/// The metadata `config` of the inputs file, in the fields `scripts/llama_torch.py`
/// reads (its docstring is the contract), with coptim's own run config copied in.
fn config_json(cfg: &TrainConfig) -> String {
    let ModelSpec::Llama(l) = &cfg.model else {
        unreachable!("the parity run is a llama")
    };
    let Algorithm::AdamW(adam) = cfg.optimizer_config().unwrap().algorithm else {
        unreachable!("AdamW")
    };
    serde_json::json!({
        "source": "coptim",
        "vocab_size": l.vocab,
        "hidden_size": l.dim,
        "num_hidden_layers": l.depth,
        "num_attention_heads": l.heads,
        "intermediate_size": l.ffn_hidden,
        "context": l.context,
        "batch_size": cfg.batch_size,
        "steps": cfg.steps,
        "tie_word_embeddings": l.tied,
        "rms_norm_eps": l.eps,
        "rope_theta": l.rope_theta,
        "betas": [adam.beta1, adam.beta2],
        "adam_eps": adam.eps,
        "weight_decay": cfg.weight_decay,
        "clip_grad_norm": cfg.clip_grad_norm,
        "coptim": cfg,
    })
    .to_string()
}

/// Writes what `scripts/llama_torch.py` trains on: initial weights (`param.<name>`),
/// the token windows (`tokens` U32[steps, batch, context + 1]) and each step's
/// learning rate (`lrs` F64[steps]), plus the config as metadata.
#[test]
#[ignore = "run by scripts/llama_torch.py"]
fn export_llama_parity_inputs() {
    let cfg = config(OptimizerKind::ADAMW);
    let data = corpus();
    let ModelSpec::Llama(l) = &cfg.model else {
        unreachable!("the parity run is a llama")
    };
    assert_eq!(
        l.vocab,
        data.vocab().len(),
        "the model's vocabulary is the text's"
    );
    let mut tensors = param_tensors(&initial_weights(&cfg));
    tensors.push((
        "tokens".into(),
        Dtype::U32,
        vec![STEPS as usize, cfg.batch_size, CONTEXT + 1],
        bytemuck::cast_slice(&step_windows(&cfg, &data)).to_vec(),
    ));
    tensors.push((
        "lrs".into(),
        Dtype::F64,
        vec![STEPS as usize],
        bytemuck::cast_slice(&step_lrs(&cfg)).to_vec(),
    ));
    write_inputs("llama_inputs.safetensors", &tensors, config_json(&cfg));
}
