//! The model API: reproducible initialization, PyTorch names, typed errors for bad
//! input, and inference that agrees with the f64 reference.

mod common;

use common::*;
use coptim::Error;
use coptim::model::{Architecture, Batch, Mlp, Model, PatchGrid, Vit, VitEncoder};
use coptim::nn::{Activation, reference as r};

fn small_mlp() -> Mlp {
    Mlp {
        input: 12,
        hidden: vec![7],
        classes: 3,
        activation: Activation::GeluErf,
    }
}

#[test]
fn initialization_is_seeded_and_pinned() {
    let a = Model::initial_values(&Mlp::default(), 7).unwrap();
    let b = Model::initial_values(&Mlp::default(), 7).unwrap();
    let c = Model::initial_values(&Mlp::default(), 8).unwrap();
    assert_eq!(a, b);
    assert_ne!(a[0].values, c[0].values);
    // Pinned values: the stream and the arithmetic are the same on every platform.
    let bound = 1.0 / 784f32.sqrt();
    assert!(a[0].values.iter().all(|v| v.abs() <= bound));
    assert_eq!(&a[0].values[..3], &PINNED_MLP_SEED7);
    let v = Model::initial_values(&Vit::default(), 7).unwrap();
    assert_eq!(&v[0].values[..3], &PINNED_VIT_SEED7);
    let ln = v
        .iter()
        .find(|t| t.name == "blocks.0.norm1.weight")
        .unwrap();
    assert!(ln.values.iter().all(|&x| x == 1.0));
    let qkv_b = v
        .iter()
        .find(|t| t.name == "blocks.0.attn.qkv.bias")
        .unwrap();
    assert!(qkv_b.values.iter().all(|&x| x == 0.0));
}

const PINNED_MLP_SEED7: [f32; 3] = [-0.024443137, -0.023715045, 0.014591152];
const PINNED_VIT_SEED7: [f32; 3] = [-0.006258151, 0.018811785, 0.024058843];

#[test]
fn parameter_names_follow_pytorch() {
    let names: Vec<(String, Vec<usize>)> = Mlp::default()
        .parameters()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.shape))
        .collect();
    let expected = [
        ("fc1.weight", vec![256, 784]),
        ("fc1.bias", vec![256]),
        ("fc2.weight", vec![256, 256]),
        ("fc2.bias", vec![256]),
        ("fc3.weight", vec![10, 256]),
        ("fc3.bias", vec![10]),
    ];
    assert_eq!(names, expected.map(|(n, s)| (n.to_string(), s)));
    let vit = Vit::default().parameters().unwrap();
    let find = |n: &str| vit.iter().find(|p| p.name == n).map(|p| p.shape.clone());
    assert_eq!(find("cls_token"), Some(vec![1, 1, 64]));
    assert_eq!(find("pos_embed"), Some(vec![1, 17, 64]));
    assert_eq!(find("patch_embed.proj.weight"), Some(vec![64, 1, 7, 7]));
    assert_eq!(find("blocks.3.attn.qkv.weight"), Some(vec![192, 64]));
    assert_eq!(find("blocks.3.mlp.fc1.weight"), Some(vec![128, 64]));
    assert_eq!(find("norm.bias"), Some(vec![64]));
    assert_eq!(find("head.weight"), Some(vec![10, 64]));
    assert_eq!(vit.len(), 4 + 4 * 12 + 4);
}

/// Batches of the wrong size or with out-of-range labels, and reads with nothing
/// pending, give typed errors.
#[test]
fn bad_batches_give_typed_errors() {
    let ctx = ctx();
    let mut model = Model::new(&ctx, small_mlp(), 0).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let images = vec![0.0; 2 * 12];
    // Too few pixels for the labels, too many labels for the pixels.
    for mismatched in [
        Batch::new(&images[..23], &[0, 1]),
        Batch::new(&images, &[0, 1, 2]),
    ] {
        assert!(matches!(
            model.record_forward_backward(&mut encoder, mismatched),
            Err(Error::LengthMismatch { .. })
        ));
    }
    assert!(matches!(
        model.record_forward(&mut encoder, Batch::new(&[], &[])),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        model.record_forward_backward(&mut encoder, Batch::new(&images, &[0, 3])),
        Err(Error::LabelOutOfRange {
            index: 1,
            label: 3,
            classes: 3
        })
    ));
    assert!(matches!(
        model.evaluate_blocking(&images, &[0, 1], 0),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        model.predict_probabilities_blocking(&images[..13], 4),
        Err(Error::LengthMismatch { .. })
    ));
}

/// ViT configurations whose heads or patches do not divide evenly are rejected.
#[test]
fn bad_vit_configs_are_rejected() {
    let ctx = ctx();
    let bad_heads = VitEncoder {
        heads: 3,
        ..VitEncoder::default()
    };
    let bad_patch = VitEncoder {
        grid: PatchGrid {
            patch: 5,
            ..PatchGrid::DIGITS
        },
        ..VitEncoder::default()
    };
    for encoder in [bad_heads, bad_patch] {
        let bad = Vit {
            encoder,
            ..Vit::default()
        };
        assert!(matches!(
            Model::new(&ctx, bad, 0),
            Err(Error::InvalidConfig(_))
        ));
    }
}

/// Graph ops reject shapes that do not fit, and unknown parameters.
#[test]
fn ops_reject_shapes_that_do_not_fit() {
    let ctx = ctx();
    let (_store, mut g, [a, b, v]) =
        common::graph::graph_over(&ctx, [("a", vec![3, 4]), ("b", vec![5, 6]), ("v", vec![7])]);
    let labels = g.labels(3);
    assert!(matches!(
        g.matmul(a, b, false, false),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        g.linear(a, b, None),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(g.add(a, v), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        g.layer_norm(a, v, v, 1e-5),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        g.attention(a, 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(g.patchify(a, 2), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        g.select_token(a, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        g.cross_entropy(b, labels),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        g.matmul(labels, a, false, false),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(g.param("missing"), Err(Error::UnknownTensor(_))));
}

/// The MLP's loss, accuracy and probabilities on the GPU match an f64 forward pass of
/// the same weights, including a last batch smaller than the others.
#[test]
fn inference_matches_the_reference() {
    let ctx = ctx();
    let arch = small_mlp();
    let mut model = Model::new(&ctx, arch.clone(), 3).unwrap();
    let n = 10;
    let images: Vec<f32> = (0..n * 12)
        .map(|i| ((i * 37 % 23) as f32 / 11.5) - 1.0)
        .collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let params = model.read_parameters_blocking().unwrap();
    let initial = Model::initial_values(&arch, 3).unwrap();
    assert_eq!(params, initial);
    let p: Vec<Vec<f64>> = params
        .iter()
        .map(|t| t.values.iter().map(|&v| v as f64).collect())
        .collect();
    let x: Vec<f64> = images.iter().map(|&v| v as f64).collect();
    let h = r::activation(
        &r::linear(&x, &p[0], Some(&p[1]), n, 12, 7),
        Activation::GeluErf,
    );
    let logits = r::linear(&h, &p[2], Some(&p[3]), n, 7, 3);
    let loss = r::cross_entropy(&logits, &labels, 3);
    let correct = r::correct_count(&logits, &labels, 3);

    let eval = model.evaluate_blocking(&images, &labels, 4).unwrap();
    assert!(
        (eval.loss - loss).abs() < 1e-5 * loss.abs().max(1.0),
        "{} vs {loss}",
        eval.loss
    );
    assert_eq!((eval.correct, eval.count), (correct, n));
    let probs = model.predict_probabilities_blocking(&images, 4).unwrap();
    let expected = r::softmax(&logits, 3);
    assert_eq!(probs.len(), n * 3);
    for (a, b) in probs.iter().zip(&expected) {
        assert!((*a as f64 - b).abs() < 1e-5);
    }

    // A recorded training batch reports the same loss.
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let outputs = model
        .record_forward_backward(&mut encoder, Batch::new(&images, &labels))
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let m = pollster::block_on(outputs.read(&ctx)).unwrap();
    assert_eq!((m.batch_size, m.correct as usize), (n, correct));
    assert!((m.loss as f64 - loss).abs() < 1e-5);
}

#[test]
fn safetensors_export_has_state_dict_keys() {
    let ctx = ctx();
    let model = Model::new(&ctx, small_mlp(), 1).unwrap();
    let bytes = pollster::block_on(model.to_safetensors()).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    assert_eq!(names, ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]);
    let w = file.tensor("fc1.weight").unwrap();
    assert_eq!(w.shape(), &[7, 12]);
    let first = f32::from_le_bytes(w.data()[..4].try_into().unwrap());
    assert_eq!(
        first,
        Model::initial_values(&small_mlp(), 1).unwrap()[0].values[0]
    );
}
