//! The LLaMA-style language model as a whole: its HF parameter layout and
//! initialization, configuration errors, and the loss and every parameter's gradient
//! of a tiny configuration against an f64 CPU reference of the same model.

mod common;

use common::model::*;
use common::*;
use coptim::Error;
use coptim::model::{Architecture, Batch, Inputs, Llama, Model};
use coptim::nn::reference;
use rand::RngExt;

/// A configuration small enough for a finite-difference gradient of every parameter.
fn tiny(tied: bool) -> Llama {
    Llama {
        vocab: 11,
        context: 6,
        dim: 8,
        depth: 2,
        heads: 2,
        ffn_hidden: 12,
        tied,
        eps: 1e-6,
        rope_theta: 10_000.0,
    }
}

/// `x * rsqrt(mean(x^2) + eps) * w` over rows of `dim`.
fn rms_norm(x: &[f64], w: &[f64], dim: usize, eps: f64) -> Vec<f64> {
    x.chunks(dim)
        .flat_map(|row| {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / dim as f64;
            let r = 1.0 / (ms + eps).sqrt();
            row.iter().zip(w).map(move |(v, w)| v * r * w)
        })
        .collect()
}

/// HF's `rotate_half` rotary embedding of `x` `[batch, tokens, heads * hd]`.
fn rope(x: &[f64], tokens: usize, heads: usize, hd: usize, theta: f64) -> Vec<f64> {
    let mut y = x.to_vec();
    let half = hd / 2;
    // Rows are (batch, token) in order, so a row's position is its index mod tokens.
    for r in 0..x.len() / (heads * hd) {
        let pos = (r % tokens) as f64;
        for h in 0..heads {
            let base = r * heads * hd + h * hd;
            for i in 0..half {
                let angle = pos * theta.powf(-2.0 * i as f64 / hd as f64);
                let (x1, x2) = (x[base + i], x[base + i + half]);
                y[base + i] = x1 * angle.cos() - x2 * angle.sin();
                y[base + i + half] = x2 * angle.cos() + x1 * angle.sin();
            }
        }
    }
    y
}

/// Causal multi-head attention of `q`, `k`, `v` `[batch, tokens, heads * hd]`.
fn causal_attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    tokens: usize,
    heads: usize,
    hd: usize,
) -> Vec<f64> {
    let d = heads * hd;
    let batch = q.len() / (tokens * d);
    let mut out = vec![0.0; q.len()];
    let scale = 1.0 / (hd as f64).sqrt();
    for b in 0..batch {
        for h in 0..heads {
            let at = |t: usize, j: usize| (b * tokens + t) * d + h * hd + j;
            for i in 0..tokens {
                let scores: Vec<f64> = (0..=i)
                    .map(|j| (0..hd).map(|c| q[at(i, c)] * k[at(j, c)]).sum::<f64>() * scale)
                    .collect();
                let p = reference::softmax(&scores, i + 1);
                for c in 0..hd {
                    out[at(i, c)] = (0..=i).map(|j| p[j] * v[at(j, c)]).sum();
                }
            }
        }
    }
    out
}

/// The mean next-token cross-entropy of the model `cfg` with parameters `p`, in f64.
fn reference_loss(cfg: &Llama, p: &Params, ids: &[u32], targets: &[u32]) -> f64 {
    let (d, f, v) = (cfg.dim, cfg.ffn_hidden, cfg.vocab);
    let n = ids.len();
    let hd = cfg.head_dim();
    let eps = cfg.eps as f64;
    let lin = |x: &[f64], name: &str, inp: usize, out: usize| {
        reference::linear(x, &p[name], None, n, inp, out)
    };
    let embed = &p["model.embed_tokens.weight"];
    let mut x: Vec<f64> = ids
        .iter()
        .flat_map(|&i| embed[i as usize * d..(i as usize + 1) * d].to_vec())
        .collect();
    for l in 0..cfg.depth {
        let pre = format!("model.layers.{l}");
        let h = rms_norm(&x, &p[&format!("{pre}.input_layernorm.weight")], d, eps);
        let proj = |which: &str| lin(&h, &format!("{pre}.self_attn.{which}_proj.weight"), d, d);
        let theta = cfg.rope_theta as f64;
        let q = rope(&proj("q"), cfg.context, cfg.heads, hd, theta);
        let k = rope(&proj("k"), cfg.context, cfg.heads, hd, theta);
        let a = causal_attention(&q, &k, &proj("v"), cfg.context, cfg.heads, hd);
        let o = lin(&a, &format!("{pre}.self_attn.o_proj.weight"), d, d);
        x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
        let h = rms_norm(
            &x,
            &p[&format!("{pre}.post_attention_layernorm.weight")],
            d,
            eps,
        );
        let gate = lin(&h, &format!("{pre}.mlp.gate_proj.weight"), d, f);
        let up = lin(&h, &format!("{pre}.mlp.up_proj.weight"), d, f);
        let m: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        let down = lin(&m, &format!("{pre}.mlp.down_proj.weight"), f, d);
        x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
    }
    let h = rms_norm(&x, &p["model.norm.weight"], d, eps);
    let head = if cfg.tied {
        "model.embed_tokens.weight"
    } else {
        "lm_head.weight"
    };
    let logits = lin(&h, head, d, v);
    reference::cross_entropy(&logits, targets, v)
}

/// A random batch of `rows` windows: ids and next-token targets.
fn random_batch(cfg: &Llama, rows: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut r = rng(seed);
    let mut draw = || {
        (0..rows * cfg.context)
            .map(|_| r.random_range(0..cfg.vocab as u32))
            .collect::<Vec<u32>>()
    };
    (draw(), draw())
}

/// The loss and every gradient of a tiny model, tied and untied, against the f64
/// reference. Tolerances: the loss to 1e-5 relative (f32 sums over at most 12
/// terms per dot product, then a log-sum-exp), each gradient tensor to 1e-3 of its
/// largest entry (the backward pass chains two blocks of f32 matmuls, softmaxes and
/// norms; a wrong index or a missing term is off by O(1)).
#[test]
fn loss_and_gradients_match_the_f64_reference() {
    let ctx = ctx();
    for tied in [false, true] {
        let cfg = tiny(tied);
        let (ids, targets) = random_batch(&cfg, 3, 8);
        let batch = Batch::tokens(&ids, &targets);
        assert_matches_reference(&ctx, &format!("tied {tied}"), &cfg, 7, batch, |p| {
            reference_loss(&cfg, p, &ids, &targets)
        });
    }
}

/// HF's names, shapes and order, and HF's initialization: N(0, 0.02) for the
/// embedding and every Linear (not truncated), ones for the norms; the same seed
/// gives the same values.
#[test]
fn parameters_follow_hf_llama() {
    let cfg = Llama {
        vocab: 73,
        dim: 64,
        ffn_hidden: 96,
        ..tiny(false)
    };
    let names: Vec<(String, Vec<usize>)> = cfg
        .parameters()
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.shape))
        .collect();
    let l0 = "model.layers.0";
    let expected_head = [
        ("model.embed_tokens.weight".to_string(), vec![73, 64]),
        (format!("{l0}.self_attn.q_proj.weight"), vec![64, 64]),
        (format!("{l0}.self_attn.k_proj.weight"), vec![64, 64]),
        (format!("{l0}.self_attn.v_proj.weight"), vec![64, 64]),
        (format!("{l0}.self_attn.o_proj.weight"), vec![64, 64]),
        (format!("{l0}.mlp.gate_proj.weight"), vec![96, 64]),
        (format!("{l0}.mlp.up_proj.weight"), vec![96, 64]),
        (format!("{l0}.mlp.down_proj.weight"), vec![64, 96]),
        (format!("{l0}.input_layernorm.weight"), vec![64]),
        (format!("{l0}.post_attention_layernorm.weight"), vec![64]),
    ];
    assert_eq!(names[..10], expected_head);
    assert_eq!(names.len(), 1 + 9 * cfg.depth + 2);
    assert_eq!(names[names.len() - 2].0, "model.norm.weight");
    assert_eq!(
        names[names.len() - 1],
        ("lm_head.weight".to_string(), vec![73, 64])
    );
    let tied = Llama {
        tied: true,
        ..cfg.clone()
    }
    .parameters()
    .unwrap();
    assert!(tied.iter().all(|s| s.name != "lm_head.weight"));

    let init = Model::initial_values(&cfg, 3).unwrap();
    assert_eq!(init, Model::initial_values(&cfg, 3).unwrap());
    assert_ne!(init, Model::initial_values(&cfg, 4).unwrap());
    let all_weights: Vec<f64> = init
        .iter()
        .filter(|t| !t.name.contains("norm"))
        .flat_map(|t| to_f64(&t.values))
        .collect();
    let n = all_weights.len() as f64;
    let mean = all_weights.iter().sum::<f64>() / n;
    let std = (all_weights.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(
        mean.abs() < 1e-3 && (std - 0.02).abs() < 5e-4,
        "mean {mean}, std {std}"
    );
    assert!(
        init.iter()
            .filter(|t| t.name.contains("norm"))
            .all(|t| t.values.iter().all(|&v| v == 1.0))
    );
}

/// Inconsistent configurations are typed errors naming the problem.
#[test]
fn inconsistent_configurations_are_refused() {
    let cases: [(Llama, &str); 6] = [
        (
            Llama {
                heads: 3,
                ..tiny(false)
            },
            "do not divide",
        ),
        (
            Llama {
                heads: 8,
                ..tiny(false)
            },
            "even",
        ),
        (
            Llama {
                vocab: 0,
                ..tiny(false)
            },
            "positive",
        ),
        (
            Llama {
                context: 0,
                ..tiny(false)
            },
            "positive",
        ),
        (
            Llama {
                eps: 0.0,
                ..tiny(false)
            },
            "eps",
        ),
        (
            Llama {
                rope_theta: f32::NAN,
                ..tiny(false)
            },
            "rope_theta",
        ),
    ];
    for (cfg, needle) in cases {
        match cfg.parameters() {
            Err(Error::InvalidConfig(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{cfg:?}: {other:?}"),
        }
    }
}

/// Token ids and targets outside the vocabulary, images given to a language model
/// and a ragged batch are typed errors, and nothing runs.
#[test]
fn bad_token_batches_are_typed_errors() {
    let ctx = ctx();
    let cfg = tiny(false);
    let mut model = Model::new(&ctx, cfg.clone(), 0).unwrap();
    let (ids, targets) = random_batch(&cfg, 2, 1);
    let mut bad_ids = ids.clone();
    bad_ids[5] = 11;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let mut run = |batch: Batch<'_>| model.record_forward_backward(&mut encoder, batch).err();
    assert!(matches!(
        run(Batch::tokens(&bad_ids, &targets)),
        Some(Error::LabelOutOfRange {
            index: 5,
            label: 11,
            classes: 11
        })
    ));
    let mut bad_targets = targets.clone();
    bad_targets[0] = 99;
    assert!(matches!(
        run(Batch::tokens(&ids, &bad_targets)),
        Some(Error::LabelOutOfRange { label: 99, .. })
    ));
    assert!(matches!(
        run(Batch::tokens(&ids[..7], &targets[..7])),
        Some(Error::LengthMismatch { .. })
    ));
    let images = vec![0.0; 12];
    assert!(matches!(
        run(Batch {
            masks: None,
            inputs: Inputs::Images(&images),
            labels: &targets
        }),
        Some(Error::ShapeMismatch { .. })
    ));
}
