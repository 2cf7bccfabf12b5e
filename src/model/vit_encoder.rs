//! [`VitEncoder`]: the ViT encoder that the classifier [`Vit`](crate::model::Vit) and
//! the masked autoencoder [`Mae`](crate::model::Mae) share (its configuration, its
//! checks, and timm's pre-norm blocks it is made of).

use crate::error::Result;
use crate::model::arch::{ParamSpec, linear};
use crate::model::init::Init;
use crate::model::patch_grid::PatchGrid;
use crate::nn::{Activation, GraphBuilder, Var};

/// timm's ViT LayerNorm epsilon (MAE's too).
const LN_EPS: f32 = 1e-6;
/// Most transformer blocks a stack may declare (ViT-g has 48): a bound on the work of
/// listing the parameters of a configuration read from a file.
const MAX_DEPTH: usize = 1024;

/// A ViT encoder: the image cut into patches by `grid`, each patch projected to `dim`
/// values, and the tokens through `depth` pre-norm blocks (`x + attn(norm1(x))`,
/// `x + mlp(norm2(x))` with the erf GELU, LayerNorm eps 1e-6) and a final LayerNorm.
///
/// [`Vit`](crate::model::Vit) and [`Mae`](crate::model::Mae) embed it flattened: its
/// fields stand at the top level of their JSON.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VitEncoder {
    /// The images and their patches.
    #[serde(flatten)]
    pub grid: PatchGrid,
    /// Embedding width.
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads; divides `dim`.
    pub heads: usize,
    /// Hidden width of each block's MLP over its width (timm: `int(width * mlp_ratio)`).
    pub mlp_ratio: f64,
}

impl Default for VitEncoder {
    /// For 28x28 digits: patch 7 (16 patches), width 64, 4 blocks of 4 heads, MLP ratio 2.
    fn default() -> Self {
        Self {
            grid: PatchGrid::DIGITS,
            dim: 64,
            depth: 4,
            heads: 4,
            mlp_ratio: 2.0,
        }
    }
}

impl VitEncoder {
    /// Hidden width of the blocks' MLPs.
    pub fn mlp_hidden(&self) -> usize {
        mlp_width(self.dim, self.mlp_ratio)
    }

    /// What makes the encoder unusable, if anything: a grid problem, a size that is
    /// zero or over 32 bits, more than 1024 blocks, heads that do not divide the width,
    /// an MLP ratio that gives no hidden width, or a tensor too large to count.
    pub(crate) fn problem(&self) -> Option<String> {
        let grid = self.grid;
        if [grid.channels, grid.image_size, grid.patch]
            .iter()
            .any(|&s| s > u32::MAX as usize)
        {
            return Some("the image sizes must fit in 32 bits".into());
        }
        grid.problem()
            .or_else(|| {
                blocks_problem(
                    "encoder",
                    [self.dim, self.depth, self.heads],
                    self.mlp_ratio,
                )
            })
            .or_else(|| {
                self.largest_tensor()
                    .is_none()
                    .then(|| "every tensor's size must fit in 64 bits".into())
            })
    }

    /// Elements of the largest encoder tensor, `None` if a size overflows (checked
    /// before any shape is built, so that no product wraps).
    fn largest_tensor(&self) -> Option<u64> {
        let n = |x: usize| u64::try_from(x).ok();
        let (d, p, c) = (n(self.dim)?, n(self.grid.patch)?, n(self.grid.channels)?);
        let side = n(self.grid.side())?;
        let tokens = side.checked_mul(side)?.checked_add(1)?;
        [
            tokens.checked_mul(d),
            c.checked_mul(p)?.checked_mul(p)?.checked_mul(d),
            d.checked_mul(d)?.checked_mul(3),
            n(self.mlp_hidden())?.checked_mul(d),
        ]
        .into_iter()
        .try_fold(0, |max: u64, size| Some(max.max(size?)))
    }

    /// The blocks' parameters (`blocks.0.norm1.weight`, ...) and the final LayerNorm's
    /// (`norm.weight`, `norm.bias`), their Linear layers initialized by `linear`.
    pub(crate) fn block_params(
        &self,
        linear: fn(&str, usize, usize) -> [ParamSpec; 2],
    ) -> Vec<ParamSpec> {
        let mut specs = stack_params("blocks", self.depth, self.dim, self.mlp_hidden(), linear);
        specs.extend(layer_norm("norm", self.dim));
        specs
    }

    /// The blocks and the final LayerNorm on the tokens `x` `[batch, tokens, dim]`.
    pub(crate) fn blocks(&self, g: &mut GraphBuilder, x: Var) -> Result<Var> {
        let x = stack(g, x, "blocks", self.depth, self.heads)?;
        apply_layer_norm(g, x, "norm")
    }
}

/// Hidden width of an MLP over `width` (`int(width * ratio)`, 0 for a ratio that is
/// not a finite positive number).
pub(crate) fn mlp_width(width: usize, ratio: f64) -> usize {
    (width as f64 * ratio) as usize
}

/// What makes a stack of blocks (`what`, e.g. `encoder`) of `[width, depth, heads]`
/// and MLP ratio `ratio` unusable, if anything.
pub(crate) fn blocks_problem(what: &str, sizes: [usize; 3], ratio: f64) -> Option<String> {
    let [width, depth, heads] = sizes;
    if sizes.iter().any(|&s| s == 0 || s > u32::MAX as usize) {
        return Some(format!(
            "every {what} size must be positive and fit in 32 bits"
        ));
    }
    if depth > MAX_DEPTH {
        return Some(format!("at most {MAX_DEPTH} {what} blocks"));
    }
    if !width.is_multiple_of(heads) {
        return Some(format!(
            "the {what} width {width} must be a multiple of its {heads} heads"
        ));
    }
    let hidden = mlp_width(width, ratio);
    (hidden == 0 || hidden > u32::MAX as usize).then(|| {
        format!("the MLP ratio {ratio} gives the {what} width {width} a hidden width of {hidden}")
    })
}

/// `weight` (ones) and `bias` (zeros) of a `torch.nn.LayerNorm(dim)`.
pub(crate) fn layer_norm(prefix: &str, dim: usize) -> [ParamSpec; 2] {
    [
        ParamSpec::new(format!("{prefix}.weight"), &[dim], Init::Constant(1.0)),
        ParamSpec::new(format!("{prefix}.bias"), &[dim], Init::Constant(0.0)),
    ]
}

/// The parameters of the `depth` blocks `{prefix}.0`, `{prefix}.1`, ... of
/// [`stack`], of width `dim` and MLP hidden width `hidden`, their Linear layers
/// initialized by `linear(prefix, fan_in, out)`.
pub(crate) fn stack_params(
    prefix: &str,
    depth: usize,
    dim: usize,
    hidden: usize,
    linear: fn(&str, usize, usize) -> [ParamSpec; 2],
) -> Vec<ParamSpec> {
    (0..depth)
        .flat_map(|i| {
            let p = format!("{prefix}.{i}");
            let mut specs = Vec::new();
            specs.extend(layer_norm(&format!("{p}.norm1"), dim));
            specs.extend(linear(&format!("{p}.attn.qkv"), dim, 3 * dim));
            specs.extend(linear(&format!("{p}.attn.proj"), dim, dim));
            specs.extend(layer_norm(&format!("{p}.norm2"), dim));
            specs.extend(linear(&format!("{p}.mlp.fc1"), dim, hidden));
            specs.extend(linear(&format!("{p}.mlp.fc2"), hidden, dim));
            specs
        })
        .collect()
}

/// timm's pre-norm blocks `{prefix}.0`, ..., `{prefix}.{depth - 1}` of `heads` heads on
/// `x`, each `x + attn(norm1(x))`, then `x + mlp(norm2(x))` with the erf GELU.
pub(crate) fn stack(
    g: &mut GraphBuilder,
    mut x: Var,
    prefix: &str,
    depth: usize,
    heads: usize,
) -> Result<Var> {
    for i in 0..depth {
        let p = format!("{prefix}.{i}");
        let h = apply_layer_norm(g, x, &format!("{p}.norm1"))?;
        let h = linear(g, h, &format!("{p}.attn.qkv"))?;
        let h = g.attention(h, heads)?;
        let h = linear(g, h, &format!("{p}.attn.proj"))?;
        x = g.add(x, h)?;
        let h = apply_layer_norm(g, x, &format!("{p}.norm2"))?;
        let h = linear(g, h, &format!("{p}.mlp.fc1"))?;
        let h = g.activation(h, Activation::GeluErf)?;
        let h = linear(g, h, &format!("{p}.mlp.fc2"))?;
        x = g.add(x, h)?;
    }
    Ok(x)
}

/// LayerNorm `prefix` (eps 1e-6) of `x`.
pub(crate) fn apply_layer_norm(g: &mut GraphBuilder, x: Var, prefix: &str) -> Result<Var> {
    let w = g.param(&format!("{prefix}.weight"))?;
    let b = g.param(&format!("{prefix}.bias"))?;
    g.layer_norm(x, w, b, LN_EPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ViT's and the MAE's JSON (configs, checkpoints, run files) are what they
    /// were before the encoder was a type of its own: the same keys in the same order.
    #[test]
    fn model_json_keeps_the_encoder_flat() {
        let vit = crate::model::Vit::default();
        let mae = crate::model::Mae::default();
        let vit_json = r#"{"channels":1,"image_size":28,"patch":7,"dim":64,"depth":4,"heads":4,"mlp_ratio":2.0,"classes":10}"#;
        let mae_json = r#"{"channels":1,"image_size":28,"patch":7,"dim":64,"depth":4,"heads":4,"mlp_ratio":4.0,"decoder_dim":32,"decoder_depth":2,"decoder_heads":4,"mask_ratio":0.75,"norm_pix_loss":true}"#;
        assert_eq!(serde_json::to_string(&vit).unwrap(), vit_json);
        assert_eq!(serde_json::to_string(&mae).unwrap(), mae_json);
        assert_eq!(vit, serde_json::from_str(vit_json).unwrap());
        assert_eq!(mae, serde_json::from_str(mae_json).unwrap());
    }

    #[test]
    fn problems_are_named() {
        let ok = VitEncoder::default();
        assert_eq!(ok.problem(), None);
        let cases = [
            ("multiple of its 3 heads", VitEncoder { heads: 3, ..ok }),
            ("positive", VitEncoder { depth: 0, ..ok }),
            ("at most 1024", VitEncoder { depth: 1025, ..ok }),
            (
                "hidden width of 0",
                VitEncoder {
                    mlp_ratio: 0.01,
                    ..ok
                },
            ),
            (
                "hidden width of 0",
                VitEncoder {
                    mlp_ratio: f64::NAN,
                    ..ok
                },
            ),
            (
                "does not divide",
                VitEncoder {
                    grid: PatchGrid {
                        patch: 5,
                        ..ok.grid
                    },
                    ..ok
                },
            ),
            (
                "32 bits",
                VitEncoder {
                    dim: 1 << 33,
                    heads: 1,
                    ..ok
                },
            ),
            (
                "64 bits",
                VitEncoder {
                    grid: PatchGrid {
                        channels: 1 << 31,
                        patch: 1 << 20,
                        image_size: 1 << 20,
                    },
                    ..ok
                },
            ),
        ];
        for (why, encoder) in cases {
            let problem = encoder.problem().unwrap_or_default();
            assert!(problem.contains(why), "{why}: {problem}");
        }
    }
}
