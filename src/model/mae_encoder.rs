//! [`Mae::class_features`]: the encoder of a trained masked autoencoder over every
//! patch (no masking), on the CPU in f64, for MAE's linear-probe evaluation.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::mae::Mae;
use crate::model::runtime::NamedTensor;
use crate::nn::Activation;
use crate::nn::reference::{self, AttentionShape};

/// MAE's LayerNorm epsilon.
const LN_EPS: f64 = 1e-6;
/// Images encoded at once (bounds the memory of the activations: about 2 MB each).
const CHUNK: usize = 64;

/// The parameters by name, in f64.
struct Weights(HashMap<String, Vec<f64>>);

impl Weights {
    /// The tensor `name`, which must hold `len` values.
    fn get(&self, name: &str, len: usize) -> Result<&[f64]> {
        match self.0.get(name) {
            Some(v) if v.len() == len => Ok(v),
            Some(v) => Err(Error::LengthMismatch {
                what: format!("MAE parameter {name}"),
                expected: len as u64,
                got: v.len() as u64,
            }),
            None => Err(Error::InvalidConfig(format!(
                "the MAE parameters lack {name}"
            ))),
        }
    }

    /// Linear `prefix` over rows of `inp` values.
    fn linear(&self, x: &[f64], prefix: &str, inp: usize, out: usize) -> Result<Vec<f64>> {
        let w = self.get(&format!("{prefix}.weight"), out * inp)?;
        let b = self.get(&format!("{prefix}.bias"), out)?;
        Ok(reference::linear(x, w, Some(b), x.len() / inp, inp, out))
    }

    /// LayerNorm `prefix` over rows of `dim`.
    fn layer_norm(&self, x: &[f64], prefix: &str, dim: usize) -> Result<Vec<f64>> {
        let w = self.get(&format!("{prefix}.weight"), dim)?;
        let b = self.get(&format!("{prefix}.bias"), dim)?;
        Ok(reference::layer_norm(x, w, b, dim, LN_EPS))
    }

    /// timm's pre-norm block `prefix` over `x` `[batch, tokens, dim]`.
    fn block(
        &self,
        x: Vec<f64>,
        prefix: &str,
        s: AttentionShape,
        hidden: usize,
    ) -> Result<Vec<f64>> {
        let d = s.dim;
        let h = self.layer_norm(&x, &format!("{prefix}.norm1"), d)?;
        let qkv = self.linear(&h, &format!("{prefix}.attn.qkv"), d, 3 * d)?;
        let a = reference::attention(&qkv, s);
        let a = self.linear(&a, &format!("{prefix}.attn.proj"), d, d)?;
        let x: Vec<f64> = x.iter().zip(&a).map(|(x, a)| x + a).collect();
        let h = self.layer_norm(&x, &format!("{prefix}.norm2"), d)?;
        let h = self.linear(&h, &format!("{prefix}.mlp.fc1"), d, hidden)?;
        let h = reference::activation(&h, Activation::GeluErf);
        let h = self.linear(&h, &format!("{prefix}.mlp.fc2"), hidden, d)?;
        Ok(x.iter().zip(&h).map(|(x, h)| x + h).collect())
    }
}

impl Mae {
    /// The class token's features after the encoder and its final LayerNorm, with
    /// every patch visible (MAE's `forward_encoder` at mask ratio 0, as its linear
    /// probe uses it), for flat `images` `[count, channels, size, size]` as the model
    /// sees them: `count * dim` values. `params` are the model's parameters by
    /// state-dict name (e.g. [`Model::read_parameters`](crate::model::Model::read_parameters));
    /// computed in f64 with [`crate::nn::reference`]. Fails on an invalid
    /// configuration, a missing or mis-sized parameter, or partial images.
    pub fn class_features(&self, params: &[NamedTensor], images: &[f32]) -> Result<Vec<f64>> {
        crate::model::Architecture::parameters(self)?;
        let sample = self.encoder.grid.sample_len();
        if images.is_empty() || !images.len().is_multiple_of(sample) {
            return Err(Error::LengthMismatch {
                what: format!("whole images of {sample} values"),
                expected: (images.len() / sample).max(1) as u64 * sample as u64,
                got: images.len() as u64,
            });
        }
        let weights = Weights(
            params
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        t.values.iter().map(|&v| f64::from(v)).collect(),
                    )
                })
                .collect(),
        );
        let mut out = Vec::with_capacity(images.len() / sample * self.encoder.dim);
        for chunk in images.chunks(CHUNK * sample) {
            out.extend(self.encode_chunk(&weights, chunk)?);
        }
        Ok(out)
    }

    /// [`Mae::class_features`] of one chunk of whole images.
    fn encode_chunk(&self, w: &Weights, images: &[f32]) -> Result<Vec<f64>> {
        let (grid, d) = (self.encoder.grid, self.encoder.dim);
        let (n, s) = (grid.num_patches(), grid.image_size);
        let b = images.len() / grid.sample_len();
        let x: Vec<f64> = images.iter().map(|&v| f64::from(v)).collect();
        let patches = reference::patchify(&x, [b, grid.channels, s, s], grid.patch);
        let mut x = w.linear(&patches, "patch_embed.proj", grid.patch_len(), d)?;
        let table = self.pos_embed(d);
        for row in x.chunks_mut(n * d) {
            row.iter_mut()
                .zip(&table[d..])
                .for_each(|(v, t)| *v += f64::from(*t));
        }
        let mut x = reference::prepend_token(&x, w.get("cls_token", d)?, b, n);
        let shape = AttentionShape {
            batch: b,
            tokens: n + 1,
            dim: d,
            heads: self.encoder.heads,
        };
        let hidden = self.encoder.mlp_hidden();
        for i in 0..self.encoder.depth {
            x = w.block(x, &format!("blocks.{i}"), shape, hidden)?;
        }
        let cls = reference::select_token(&x, b, n + 1, d, 0);
        w.layer_norm(&cls, "norm", d)
    }
}
