//! [`Vit`]: a vision transformer in the layout of timm's `VisionTransformer`.

use crate::error::Result;
use crate::model::arch::{Architecture, ParamSpec, config_error, linear, torch_linear};
use crate::model::init::Init;
use crate::model::patch_grid::PatchGrid;
use crate::nn::{Activation, GraphBuilder, Var};

/// timm's ViT LayerNorm epsilon.
const LN_EPS: f32 = 1e-6;
/// timm's initialization scale for Linear weights, position embedding and class token.
const INIT_STD: f64 = 0.02;
/// Most transformer blocks a configuration may declare (ViT-g has 48): a bound on the
/// work of listing the parameters of a configuration read from a file.
const MAX_DEPTH: usize = 1024;

/// A vision transformer like timm's `vit_tiny_patch16_224`, scaled to small images:
/// Conv2d patch embedding, class token, learned position embedding, `depth`
/// pre-norm blocks (`x + attn(norm1(x))`, `x + mlp(norm2(x))` with GELU, erf form),
/// final LayerNorm (eps 1e-6) and a Linear head on the class token.
///
/// Parameter names are timm's state-dict keys (`cls_token`, `pos_embed`,
/// `patch_embed.proj.weight`, `blocks.0.norm1.weight`, `blocks.0.attn.qkv.weight`,
/// `blocks.0.attn.proj.weight`, `blocks.0.mlp.fc1.weight`, ..., `norm.weight`,
/// `head.weight`), so `timm.create_model("vit_tiny_patch16_224", img_size=28,
/// patch_size=..., in_chans=1, embed_dim=..., depth=..., num_heads=..., mlp_ratio=...,
/// num_classes=10)` loads them. Initialization as timm's default: Linear weights
/// truncated normal (std 0.02, bounds ±2) with zero biases, position embedding and
/// class token truncated normal (std 0.02), LayerNorm weight 1 and bias 0, and the
/// patch embedding as `torch.nn.Conv2d` (uniform `±1/sqrt(channels * patch^2)`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vit {
    /// The images and their patches.
    #[serde(flatten)]
    pub grid: PatchGrid,
    /// Embedding width.
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads; divides `dim`.
    pub heads: usize,
    /// Hidden width of each block's MLP over `dim` (timm: `int(dim * mlp_ratio)`).
    pub mlp_ratio: f64,
    /// Number of classes.
    pub classes: usize,
}

impl Default for Vit {
    /// A small ViT for 28x28 digits: patch 7 (16 patches + class token), width 64,
    /// 4 blocks of 4 heads, MLP ratio 2.
    fn default() -> Self {
        Self {
            grid: PatchGrid::DIGITS,
            dim: 64,
            depth: 4,
            heads: 4,
            mlp_ratio: 2.0,
            classes: 10,
        }
    }
}

impl Vit {
    /// Hidden width of the blocks' MLPs.
    pub fn mlp_hidden(&self) -> usize {
        (self.dim as f64 * self.mlp_ratio) as usize
    }

    /// Elements of the largest parameter tensor, `None` if a size overflows (checked
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
            n(self.classes)?.checked_mul(d),
        ]
        .into_iter()
        .try_fold(0, |max: u64, size| Some(max.max(size?)))
    }

    fn validate(&self) -> Result<()> {
        if self.depth > MAX_DEPTH || self.largest_tensor().is_none() {
            return Err(config_error(
                "ViT",
                self,
                format!("at most {MAX_DEPTH} blocks, and every tensor's size must fit in 64 bits"),
            ));
        }
        if let Some(problem) = self.grid.problem() {
            return Err(config_error("ViT", self, problem));
        }
        let ok = self.heads > 0
            && self.dim > 0
            && self.dim.is_multiple_of(self.heads)
            && self.mlp_hidden() > 0
            && self.classes > 0;
        if ok {
            Ok(())
        } else {
            Err(config_error(
                "ViT",
                self,
                "sizes must be positive and the heads must divide the width",
            ))
        }
    }
}

fn timm_linear(prefix: &str, fan_in: usize, out: usize) -> [ParamSpec; 2] {
    [
        ParamSpec::new(
            format!("{prefix}.weight"),
            &[out, fan_in],
            Init::trunc_normal(INIT_STD),
        ),
        ParamSpec::new(format!("{prefix}.bias"), &[out], Init::Constant(0.0)),
    ]
}

/// `weight` (ones) and `bias` (zeros) of a `torch.nn.LayerNorm(dim)`.
pub(crate) fn layer_norm(prefix: &str, dim: usize) -> [ParamSpec; 2] {
    [
        ParamSpec::new(format!("{prefix}.weight"), &[dim], Init::Constant(1.0)),
        ParamSpec::new(format!("{prefix}.bias"), &[dim], Init::Constant(0.0)),
    ]
}

/// The parameters of timm's pre-norm `Block` `prefix` of width `dim` and MLP hidden
/// width `hidden`, its Linear layers initialized by `linear(prefix, fan_in, out)`.
pub(crate) fn block_params(
    prefix: &str,
    dim: usize,
    hidden: usize,
    linear: fn(&str, usize, usize) -> [ParamSpec; 2],
) -> Vec<ParamSpec> {
    let mut specs = Vec::new();
    specs.extend(layer_norm(&format!("{prefix}.norm1"), dim));
    specs.extend(linear(&format!("{prefix}.attn.qkv"), dim, 3 * dim));
    specs.extend(linear(&format!("{prefix}.attn.proj"), dim, dim));
    specs.extend(layer_norm(&format!("{prefix}.norm2"), dim));
    specs.extend(linear(&format!("{prefix}.mlp.fc1"), dim, hidden));
    specs.extend(linear(&format!("{prefix}.mlp.fc2"), hidden, dim));
    specs
}

/// timm's pre-norm `Block` `prefix` on `x`: `x + attn(norm1(x))`, then
/// `x + mlp(norm2(x))` with the erf GELU, LayerNorm eps 1e-6.
pub(crate) fn block(g: &mut GraphBuilder, x: Var, prefix: &str, heads: usize) -> Result<Var> {
    let h = apply_layer_norm(g, x, &format!("{prefix}.norm1"))?;
    let h = linear(g, h, &format!("{prefix}.attn.qkv"))?;
    let h = g.attention(h, heads)?;
    let h = linear(g, h, &format!("{prefix}.attn.proj"))?;
    let x = g.add(x, h)?;
    let h = apply_layer_norm(g, x, &format!("{prefix}.norm2"))?;
    let h = linear(g, h, &format!("{prefix}.mlp.fc1"))?;
    let h = g.activation(h, Activation::GeluErf)?;
    let h = linear(g, h, &format!("{prefix}.mlp.fc2"))?;
    g.add(x, h)
}

/// LayerNorm `prefix` (eps 1e-6) of `x`.
pub(crate) fn apply_layer_norm(g: &mut GraphBuilder, x: Var, prefix: &str) -> Result<Var> {
    let w = g.param(&format!("{prefix}.weight"))?;
    let b = g.param(&format!("{prefix}.bias"))?;
    g.layer_norm(x, w, b, LN_EPS)
}

impl Architecture for Vit {
    fn name(&self) -> &'static str {
        "vit"
    }

    fn sample_shape(&self) -> Vec<usize> {
        self.grid.sample_shape()
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn parameters(&self) -> Result<Vec<ParamSpec>> {
        self.validate()?;
        let (d, p, c) = (self.dim, self.grid.patch, self.grid.channels);
        let normal = Init::trunc_normal(INIT_STD);
        let [mut pw, pb] = torch_linear("patch_embed.proj", self.grid.patch_len(), d);
        pw.shape = vec![d, c, p, p];
        let mut specs = vec![
            ParamSpec::new("cls_token", &[1, 1, d], normal),
            ParamSpec::new("pos_embed", &[1, self.grid.num_patches() + 1, d], normal),
            pw,
            pb,
        ];
        for i in 0..self.depth {
            let hidden = self.mlp_hidden();
            specs.extend(block_params(&format!("blocks.{i}"), d, hidden, timm_linear));
        }
        specs.extend(layer_norm("norm", d));
        specs.extend(timm_linear("head", d, self.classes));
        Ok(specs)
    }

    fn logits(&self, g: &mut GraphBuilder, images: Var) -> Result<Var> {
        let patches = g.patchify(images, self.grid.patch)?;
        let tokens = linear(g, patches, "patch_embed.proj")?;
        let cls = g.param("cls_token")?;
        let tokens = g.prepend_token(tokens, cls)?;
        let pos = g.param("pos_embed")?;
        let mut x = g.add(tokens, pos)?;
        for i in 0..self.depth {
            x = block(g, x, &format!("blocks.{i}"), self.heads)?;
        }
        let x = apply_layer_norm(g, x, "norm")?;
        let cls = g.select_token(x, 0)?;
        linear(g, cls, "head")
    }
}
