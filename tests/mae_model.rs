//! The masked autoencoder as a whole: the loss and every parameter's gradient of a
//! tiny configuration against an f64 CPU reference of MAE's forward pass, the
//! reconstruction API, the masks' determinism, the reference's names and
//! initialization, and configuration errors.

mod common;

use common::model::*;
use common::*;
use coptim::Error;
use coptim::model::{
    Architecture, Batch, Mae, Masking, Model, PatchGrid, PatchMasks, Task, VitEncoder,
};
use coptim::nn::Activation;
use coptim::nn::reference::{self, AttentionShape, GatherShape};

/// Patch 4 of an 8x8 image (4 patches, 2 kept), widths 8, one block each: small
/// enough for a finite-difference gradient of every parameter.
fn tiny(norm_pix_loss: bool) -> Mae {
    Mae {
        encoder: VitEncoder {
            grid: PatchGrid {
                channels: 1,
                image_size: 8,
                patch: 4,
            },
            dim: 8,
            depth: 1,
            heads: 2,
            mlp_ratio: 2.0,
        },
        decoder_dim: 8,
        decoder_depth: 1,
        decoder_heads: 2,
        mask_ratio: 0.5,
        norm_pix_loss,
    }
}

/// `x += table` per sample (`x` `[batch, rows, width]`, `table` `[rows, width]`).
fn add_per_sample(x: &mut [f64], table: &[f32]) {
    for row in x.chunks_mut(table.len()) {
        row.iter_mut().zip(table).for_each(|(v, t)| *v += *t as f64);
    }
}

/// LayerNorm `prefix` (eps 1e-6) over rows of `dim`.
fn norm(x: &[f64], p: &Params, prefix: &str, dim: usize) -> Vec<f64> {
    let (w, b) = (
        &p[&format!("{prefix}.weight")],
        &p[&format!("{prefix}.bias")],
    );
    reference::layer_norm(x, w, b, dim, 1e-6)
}

/// Linear `prefix` over rows of `inp` values.
fn lin(x: &[f64], p: &Params, prefix: &str, inp: usize, out: usize) -> Vec<f64> {
    let (w, b) = (
        &p[&format!("{prefix}.weight")],
        &p[&format!("{prefix}.bias")],
    );
    reference::linear(x, w, Some(b), x.len() / inp, inp, out)
}

/// timm's pre-norm block `prefix` on `x` `[batch, tokens, dim]`.
fn block(x: &[f64], p: &Params, prefix: &str, s: AttentionShape, hidden: usize) -> Vec<f64> {
    let d = s.dim;
    let h = norm(x, p, &format!("{prefix}.norm1"), d);
    let qkv = lin(&h, p, &format!("{prefix}.attn.qkv"), d, 3 * d);
    let a = reference::attention(&qkv, s);
    let a = lin(&a, p, &format!("{prefix}.attn.proj"), d, d);
    let x: Vec<f64> = x.iter().zip(&a).map(|(x, a)| x + a).collect();
    let h = norm(&x, p, &format!("{prefix}.norm2"), d);
    let h = lin(&h, p, &format!("{prefix}.mlp.fc1"), d, hidden);
    let h = reference::activation(&h, Activation::GeluErf);
    let h = lin(&h, p, &format!("{prefix}.mlp.fc2"), hidden, d);
    x.iter().zip(&h).map(|(x, h)| x + h).collect()
}

/// `depth` blocks `{prefix}.{i}` in order over `s`, each MLP `int(dim * mlp_ratio)`
/// wide.
fn stack(
    mut x: Vec<f64>,
    p: &Params,
    prefix: &str,
    depth: usize,
    s: AttentionShape,
    mlp_ratio: f64,
) -> Vec<f64> {
    let hidden = (s.dim as f64 * mlp_ratio) as usize;
    for i in 0..depth {
        x = block(&x, p, &format!("{prefix}.{i}"), s, hidden);
    }
    x
}

/// MAE's `forward_encoder` in f64, written from the reference (not from coptim's
/// graph): patch embedding plus the sin-cos table, the `k` patches per image `keep`
/// names, the class token, the blocks and the final norm: `[batch, k + 1, dim]`.
fn reference_encoder(cfg: &Mae, p: &Params, images: &[f64], keep: &[u32], k: usize) -> Vec<f64> {
    let (n, d, s) = (
        cfg.encoder.grid.num_patches(),
        cfg.encoder.dim,
        cfg.encoder.grid.image_size,
    );
    let b = keep.len() / k;
    let patches = reference::patchify(
        images,
        [b, cfg.encoder.grid.channels, s, s],
        cfg.encoder.grid.patch,
    );
    let mut x = lin(
        &patches,
        p,
        "patch_embed.proj",
        cfg.encoder.grid.patch_len(),
        d,
    );
    add_per_sample(&mut x, &cfg.pos_embed(d)[d..]);
    let g = GatherShape {
        batch: b,
        sources: n,
        tokens: k,
        dim: d,
    };
    let x = reference::gather_tokens(&x, keep, None, g);
    let x = reference::prepend_token(&x, &p["cls_token"], b, k);
    let enc = AttentionShape {
        batch: b,
        tokens: k + 1,
        dim: d,
        heads: cfg.encoder.heads,
    };
    let x = stack(
        x,
        p,
        "blocks",
        cfg.encoder.depth,
        enc,
        cfg.encoder.mlp_ratio,
    );
    norm(&x, p, "norm", d)
}

/// MAE's loss in f64, written from the reference's forward pass (not from coptim's
/// graph): the encoder over the kept patches, the decoder sequence with mask tokens,
/// the decoder, the prediction with the class row dropped, the loss over removed
/// patches.
fn reference_loss(cfg: &Mae, p: &Params, images: &[f64], masks: &PatchMasks) -> f64 {
    let grid = cfg.encoder.grid;
    let (n, d, dd, pl) = (
        grid.num_patches(),
        cfg.encoder.dim,
        cfg.decoder_dim,
        grid.patch_len(),
    );
    let (b, k, s) = (masks.rows(), cfg.kept_patches(), grid.image_size);
    let patches = reference::patchify(images, [b, grid.channels, s, s], grid.patch);
    let rows = masks.all();
    let x = reference_encoder(cfg, p, images, rows.keep, k);
    let x = lin(&x, p, "decoder_embed", d, dd);
    let g = GatherShape {
        batch: b,
        sources: k + 1,
        tokens: n + 1,
        dim: dd,
    };
    let mut x = reference::gather_tokens(&x, rows.restore, Some(&p["mask_token"]), g);
    add_per_sample(&mut x, &cfg.pos_embed(dd));
    let dec = AttentionShape {
        batch: b,
        tokens: n + 1,
        dim: dd,
        heads: cfg.decoder_heads,
    };
    let x = stack(
        x,
        p,
        "decoder_blocks",
        cfg.decoder_depth,
        dec,
        cfg.encoder.mlp_ratio,
    );
    let pred = lin(&norm(&x, p, "decoder_norm", dd), p, "decoder_pred", dd, pl);
    let pred: Vec<f64> = pred
        .chunks(pl)
        .enumerate()
        .filter(|(r, _)| r % (n + 1) != 0)
        .flat_map(|(_, row)| row.to_vec())
        .collect();
    let mask: Vec<f64> = (0..b * n)
        .map(|i| f64::from(u8::from(masks.is_removed(i / n, i % n))))
        .collect();
    reference::masked_mse(&pred, &patches, &mask, pl, cfg.norm_pix_loss)
}

/// The masking shape of `cfg`.
fn masking(cfg: &Mae) -> Masking {
    match cfg.io().task {
        Task::Reconstruct(m) => m,
        Task::Classify => panic!("a masked autoencoder reconstructs"),
    }
}

/// The loss and every gradient of a tiny model, with and without normalized
/// targets, against the f64 reference. Tolerances as the language model's: the loss
/// to 1e-5 relative (f32 sums of at most 16 terms per dot product), each gradient
/// tensor to 1e-3 of its largest entry (two blocks of f32 matmuls, softmaxes and
/// norms; a wrong index, a missing mask token or a wrong table is off by O(1)).
#[test]
fn loss_and_gradients_match_the_f64_reference() {
    let ctx = ctx();
    for norm_pix in [false, true] {
        let cfg = tiny(norm_pix);
        let images = to_f32(&randn(&mut rng(8), 3 * 64, 1.0));
        let masks = PatchMasks::for_step(masking(&cfg), 5, 1, 3);
        let images64 = to_f64(&images);
        let batch = Batch::masked(&images, masks.all());
        assert_matches_reference(&ctx, &format!("norm_pix {norm_pix}"), &cfg, 7, batch, |p| {
            reference_loss(&cfg, p, &images64, &masks)
        });
    }
}

/// The linear probe's features: the class token after the encoder with every patch
/// visible, against the f64 reference's encoder given every patch as kept. Both are
/// f64 compositions of the same reference ops, so they agree to rounding (1e-12
/// relative: only the order of a few sums may differ).
#[test]
fn class_features_are_the_unmasked_encoder_s_class_token() {
    let cfg = tiny(false);
    let (n, d) = (cfg.encoder.grid.num_patches(), cfg.encoder.dim);
    let params = random_parameters(&cfg, 11);
    let images = to_f32(&randn(&mut rng(12), 3 * 64, 1.0));
    let got = cfg.class_features(&params, &images).unwrap();
    let all: Vec<u32> = (0..3).flat_map(|_| 0..n as u32).collect();
    let tokens = reference_encoder(&cfg, &params_f64(&params), &to_f64(&images), &all, n);
    let want = reference::select_token(&tokens, 3, n + 1, d, 0);
    assert_eq!(got.len(), 3 * d);
    assert!(rel_err(&got, &want) < 1e-12, "{}", rel_err(&got, &want));
    // Each image's features depend on that image only (chunks do not mix).
    let one = cfg.class_features(&params, &images[64..128]).unwrap();
    assert_eq!(one, got[d..2 * d]);

    let partial = cfg.class_features(&params, &images[..100]).unwrap_err();
    assert!(matches!(partial, Error::LengthMismatch { .. }), "{partial}");
    let missing = cfg.class_features(&params[1..], &images).unwrap_err();
    assert!(missing.to_string().contains("cls_token"), "{missing}");
    let mut short = params.clone();
    short
        .iter_mut()
        .find(|t| t.name == "norm.weight")
        .unwrap()
        .values
        .pop();
    let err = cfg.class_features(&short, &images).unwrap_err();
    assert!(err.to_string().contains("norm.weight"), "{err}");
}

/// `Model::reconstruct` returns images whose removed patches give the evaluation's
/// loss (plain targets), and the batch's loss read after a step is the same number.
#[test]
fn reconstructions_give_the_evaluated_loss() {
    let ctx = ctx();
    let cfg = tiny(false);
    let mut model = Model::new(&ctx, cfg.clone(), 3).unwrap();
    let images = to_f32(&randn(&mut rng(9), 5 * 64, 1.0));
    let masks = PatchMasks::for_step(masking(&cfg), 1, 2, 5);
    let pixels = model.reconstruct_blocking(&images, &masks, 2).unwrap();
    assert_eq!(pixels.len(), images.len());
    let (n, pl) = (cfg.encoder.grid.num_patches(), cfg.encoder.grid.patch_len());
    let shape = [5, 1, 8, 8];
    let pred = reference::patchify(&to_f64(&pixels), shape, cfg.encoder.grid.patch);
    let target = reference::patchify(&to_f64(&images), shape, cfg.encoder.grid.patch);
    let mask: Vec<f64> = (0..5 * n)
        .map(|i| f64::from(u8::from(masks.is_removed(i / n, i % n))))
        .collect();
    let want = reference::masked_mse(&pred, &target, &mask, pl, false);
    let eval = model
        .evaluate_batches_blocking(Batch::masked(&images, masks.all()), 5)
        .unwrap();
    assert!(
        (eval.loss - want).abs() <= 1e-5 * want,
        "{} vs {want}",
        eval.loss
    );
    assert_eq!((eval.count, eval.correct), (5, 0));
}

/// Masks depend only on (seed, step, image): the same for a larger batch's first
/// rows, different for another step or seed; each keeps exactly the patches of
/// smallest noise.
#[test]
fn masks_are_deterministic_per_seed_step_and_image() {
    let m = Masking {
        grid: PatchGrid::DIGITS,
        kept: 4,
    };
    let a = PatchMasks::for_step(m, 3, 10, 4);
    let b = PatchMasks::for_step(m, 3, 10, 9);
    assert_eq!(a.all(), b.all().slice(0, 4));
    assert_ne!(a, PatchMasks::for_step(m, 3, 11, 4));
    assert_ne!(a, PatchMasks::for_step(m, 4, 10, 4));
    let noise = PatchMasks::noise(3, 10, 4, 16);
    assert_eq!(PatchMasks::from_noise(m, &noise).unwrap(), a);
    for (r, row) in noise.chunks(16).enumerate() {
        let mut sorted = row.to_vec();
        sorted.sort_by(f32::total_cmp);
        for (i, v) in row.iter().enumerate() {
            assert_eq!(a.is_removed(r, i), *v > sorted[3], "row {r} patch {i}");
        }
    }
    let validation = PatchMasks::validation(m, 6);
    assert_eq!(validation, PatchMasks::validation(m, 6));
    assert!(PatchMasks::from_noise(m, &noise[..15]).is_err());
    assert!(PatchMasks::from_noise(m, &[f32::NAN; 16]).is_err());
    assert!(PatchMasks::from_removed(m, &[true; 16]).is_err());
}

/// The reference's names, shapes and initialization: xavier-uniform Linear weights
/// (qkv as one matrix) and patch projection, Conv2d's default patch bias, tokens
/// N(0, 0.02), LayerNorm 1 and 0, biases 0; the sin-cos tables are constants with a
/// zero class row, the column in the first half; no weight decay on biases and norms.
#[test]
fn names_and_initialization_are_mae_s() {
    let cfg = Mae::default();
    let init = Model::initial_values(&cfg, 0).unwrap();
    let get = |name: &str| init.iter().find(|t| t.name == name).unwrap();
    assert!(init.iter().all(|t| !t.name.contains("pos_embed")));
    assert_eq!(get("blocks.3.attn.qkv.weight").shape, vec![192, 64]);
    assert_eq!(get("patch_embed.proj.weight").shape, vec![64, 1, 7, 7]);
    assert_eq!(get("decoder_pred.weight").shape, vec![49, 32]);
    let max_abs = |name: &str| get(name).values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let bound = |fan_in: f64, fan_out: f64| (6.0 / (fan_in + fan_out)).sqrt() as f32;
    assert!(max_abs("blocks.0.attn.qkv.weight") <= bound(64.0, 192.0));
    assert!(max_abs("blocks.0.attn.qkv.weight") > 0.9 * bound(64.0, 192.0));
    assert!(max_abs("patch_embed.proj.weight") <= bound(49.0, 64.0));
    assert!(max_abs("patch_embed.proj.weight") > 0.9 * bound(49.0, 64.0));
    assert!(max_abs("patch_embed.proj.bias") <= 1.0 / 7.0);
    assert!(max_abs("patch_embed.proj.bias") > 0.1);
    assert_eq!(max_abs("blocks.0.attn.qkv.bias"), 0.0);
    assert!(get("decoder_norm.weight").values.iter().all(|&v| v == 1.0));
    let cls = &get("cls_token").values;
    let std = (cls.iter().map(|v| v * v).sum::<f32>() / cls.len() as f32).sqrt();
    assert!((0.01..0.03).contains(&std), "cls_token std {std}");
    let table = cfg.pos_embed(64);
    assert_eq!(table.len(), 17 * 64);
    assert!(table[..64].iter().all(|&v| v == 0.0));
    // Patch 1 is row 0, column 1: the first half is sin/cos of the column.
    assert_eq!(table[64 + 64], 1f64.sin() as f32);
    assert_eq!(table[64 + 64 + 32], 0.0);
    let exempt = cfg.no_weight_decay().unwrap();
    assert!(exempt.contains(&"blocks.0.norm1.weight".to_string()));
    assert!(exempt.contains(&"patch_embed.proj.bias".to_string()));
    assert!(!exempt.contains(&"cls_token".to_string()));
    assert!(
        !exempt
            .iter()
            .any(|n| n.ends_with(".weight") && !n.contains("norm"))
    );
}

/// `base` with `edit` applied.
fn edited(base: Mae, edit: impl FnOnce(&mut Mae)) -> Mae {
    let mut cfg = base;
    edit(&mut cfg);
    cfg
}

/// Inconsistent configurations are refused with a message naming the problem.
#[test]
fn bad_configurations_are_refused() {
    let d = Mae::default;
    let cases = [
        (
            "multiple of 4",
            edited(d(), |m| (m.encoder.dim, m.encoder.heads) = (66, 2)),
        ),
        (
            "multiple of 4",
            edited(d(), |m| (m.decoder_dim, m.decoder_heads) = (30, 2)),
        ),
        ("does not divide", edited(d(), |m| m.encoder.grid.patch = 5)),
        ("keeps 0 of 16", edited(d(), |m| m.mask_ratio = 0.95)),
        ("keeps 16 of 16", edited(d(), |m| m.mask_ratio = 0.0)),
        ("heads", edited(d(), |m| m.encoder.heads = 3)),
        ("positive", edited(d(), |m| m.encoder.depth = 0)),
        (
            "normalized targets",
            edited(tiny(true), |m| {
                (m.encoder.grid.patch, m.encoder.grid.image_size) = (1, 4)
            }),
        ),
    ];
    for (why, cfg) in cases {
        match cfg.parameters() {
            Err(Error::InvalidConfig(msg)) => assert!(msg.contains(why), "{why}: {msg}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    assert!(matches!(
        Model::new(&ctx(), edited(d(), |m| m.encoder.grid.patch = 5), 0),
        Err(Error::InvalidConfig(_))
    ));
}

/// Labels instead of masks, or masks of another patch grid, are refused before
/// anything is recorded; so is asking a reconstructing model for logits.
#[test]
fn batches_the_model_cannot_read_are_refused() {
    let ctx = ctx();
    let mut model = Model::new(&ctx, tiny(false), 0).unwrap();
    let images = vec![0.0; 2 * 64];
    let other = PatchMasks::for_step(
        Masking {
            grid: tiny(false).encoder.grid,
            kept: 1,
        },
        0,
        1,
        2,
    );
    for batch in [
        Batch::new(&images, &[0, 1]),
        Batch::masked(&images, other.all()),
    ] {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let err = model
            .record_forward_backward(&mut encoder, batch)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    }
    assert!(
        model
            .predict_blocking(coptim::model::Inputs::Images(&images), 2)
            .is_err()
    );
}
