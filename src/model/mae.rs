//! [`Mae`]: a masked autoencoder in the layout of the MAE reference code
//! (facebookresearch/mae, `models_mae.py`, `MaskedAutoencoderViT`).

use crate::error::Result;
use crate::model::arch::{
    Architecture, InputKind, MaskVars, Masking, ModelIo, Output, ParamSpec, Reconstruction, Task,
    config_error, linear,
};
use crate::model::init::Init;
use crate::model::patch_grid::PatchGrid;
use crate::model::vit_encoder::{
    VitEncoder, apply_layer_norm, blocks_problem, layer_norm, mlp_width, stack, stack_params,
};
use crate::nn::{GraphBuilder, Var, reference};

/// MAE's standard deviation of the class and mask tokens.
const TOKEN_STD: f64 = 0.02;
/// MAE's `norm_pix_loss` epsilon (inside the square root), as the masked MSE uses it.
const NORM_PIX_EPS: f32 = 1e-6;
/// The base of the sin-cos position tables' frequencies.
const SINCOS_BASE: f64 = 10_000.0;

/// A masked autoencoder (He et al., 2021) as the MAE reference code builds it, at any
/// size: the image cut into `patch x patch` patches, a random `mask_ratio` of them
/// removed per image, a [`VitEncoder`] (class token, pre-norm blocks, LayerNorm)
/// over the visible ones, a linear `decoder_embed`, a learned mask token at the
/// removed positions, `decoder_depth` blocks and a linear head to pixels; the loss is
/// the mean squared error over the removed patches, optionally against per-patch
/// normalized targets (`norm_pix_loss`, unbiased variance, eps 1e-6). Position
/// embeddings are MAE's fixed 2-D sin-cos tables (constants, not trained); every
/// LayerNorm has eps 1e-6, every MLP the erf GELU.
///
/// Parameter names are the reference's state-dict keys (`cls_token`, `mask_token`,
/// `patch_embed.proj.weight` `[dim, channels, patch, patch]`, `blocks.0.attn.qkv.weight`,
/// ..., `norm.weight`, `decoder_embed.weight`, `decoder_blocks.0.norm1.weight`, ...,
/// `decoder_norm.weight`, `decoder_pred.weight`); `pos_embed` and
/// `decoder_pos_embed` are not parameters ([`Mae::pos_embed`] gives them).
/// Initialization as `initialize_weights`: xavier-uniform Linear weights (the packed
/// qkv as one `[3 dim, dim]` matrix) with zero biases, the patch projection
/// xavier-uniform on its `[dim, channels * patch^2]` view with PyTorch's Conv2d
/// default bias, class and mask tokens N(0, 0.02), LayerNorm 1 and 0.
///
/// With one channel the decoder's pixel order inside a patch is MAE's; with more it
/// is (channel, row, column) where MAE's is (row, column, channel) (the loss, a mean
/// over each patch, is the same).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mae {
    /// The encoder; its width a multiple of 4 (the sin-cos table), its `mlp_ratio` the
    /// decoder's too.
    #[serde(flatten)]
    pub encoder: VitEncoder,
    /// Decoder width; a multiple of 4 and of `decoder_heads`.
    pub decoder_dim: usize,
    /// Decoder blocks.
    pub decoder_depth: usize,
    /// Decoder attention heads.
    pub decoder_heads: usize,
    /// Fraction of the patches removed from each image; at least one patch must stay
    /// and one go.
    pub mask_ratio: f64,
    /// Normalize each target patch by its mean and unbiased variance.
    pub norm_pix_loss: bool,
}

impl Default for Mae {
    /// The digit-sized MAE of the PyTorch reference script: patch 7 (16 patches),
    /// encoder width 64 with 4 blocks of 4 heads, decoder width 32 with 2 blocks of 4
    /// heads, MLP ratio 4, mask ratio 0.75, normalized targets.
    fn default() -> Self {
        Self {
            encoder: VitEncoder {
                mlp_ratio: 4.0,
                ..VitEncoder::default()
            },
            decoder_dim: 32,
            decoder_depth: 2,
            decoder_heads: 4,
            mask_ratio: 0.75,
            norm_pix_loss: true,
        }
    }
}

/// `weight` and `bias` of an `nn.Linear` as MAE initializes it: xavier-uniform
/// weight, zero bias.
fn xavier_linear(prefix: &str, fan_in: usize, out: usize) -> [ParamSpec; 2] {
    [
        ParamSpec::new(
            format!("{prefix}.weight"),
            &[out, fan_in],
            xavier(fan_in, out),
        ),
        ParamSpec::new(format!("{prefix}.bias"), &[out], Init::Constant(0.0)),
    ]
}

/// `torch.nn.init.xavier_uniform_` (gain 1): uniform on `±sqrt(6 / (fan_in + fan_out))`.
fn xavier(fan_in: usize, fan_out: usize) -> Init {
    Init::Uniform {
        bound: (6.0 / (fan_in + fan_out).max(1) as f64).sqrt(),
    }
}

/// MAE's 1-D sin-cos embedding of position `pos` into `dim` values:
/// `[sin(pos w_k) for k < dim/2, cos(pos w_k) for k < dim/2]`, `w_k = 10000^(-2k/dim)`.
fn sincos_1d(dim: usize, pos: f64) -> impl Iterator<Item = f64> {
    let half = dim / 2;
    let omega = move |k: usize| 1.0 / SINCOS_BASE.powf(k as f64 / half as f64);
    let angles = move || (0..half).map(move |k| pos * omega(k));
    angles().map(f64::sin).chain(angles().map(f64::cos))
}

impl Mae {
    /// Patches each mask keeps: `int(patches * (1 - mask_ratio))`, as MAE computes it.
    pub fn kept_patches(&self) -> usize {
        (self.encoder.grid.num_patches() as f64 * (1.0 - self.mask_ratio)) as usize
    }

    /// The shape of each image's mask: the grid and the patches kept.
    fn masking(&self) -> Masking {
        Masking {
            grid: self.encoder.grid,
            kept: self.kept_patches(),
        }
    }

    /// MAE's `get_2d_sincos_pos_embed(width, grid, cls_token=True)` in f32,
    /// `[patches + 1, width]` row-major: a zero row for the class token, then per patch
    /// (row-major over the grid) the 1-D table of its column in the first half of the
    /// channels and of its row in the second (computed in f64). `width` must be a
    /// multiple of 4: [`VitEncoder::dim`] for `pos_embed`, [`Mae::decoder_dim`] for
    /// `decoder_pos_embed`.
    pub fn pos_embed(&self, width: usize) -> Vec<f32> {
        let mut table = vec![0.0f32; width];
        for n in 0..self.encoder.grid.num_patches() {
            let (row, col) = self.encoder.grid.position(n);
            let values = sincos_1d(width / 2, col as f64).chain(sincos_1d(width / 2, row as f64));
            table.extend(values.map(|v| v as f32));
        }
        table
    }

    /// The yardstick: the loss of predicting every removed patch as the mean
    /// training patch, i.e. the mean over `test`'s patches and values of
    /// `(target - m)^2`, `m` the mean target patch over every patch of `train` (both
    /// flat images of [`ModelIo::sample_shape`], as the model sees them; targets
    /// normalized per patch when `norm_pix_loss`). Averaging over all patches is the
    /// exact expectation over random masks, which remove a fixed number per image.
    /// Computed in f64.
    pub fn mean_patch_baseline(&self, train: &[f32], test: &[f32]) -> f64 {
        let p = self.encoder.grid.patch_len();
        let mean: Vec<f64> = {
            let targets = self.patch_targets(train);
            let patches = (targets.len() / p).max(1) as f64;
            (0..p)
                .map(|j| targets.iter().skip(j).step_by(p).sum::<f64>() / patches)
                .collect()
        };
        let targets = self.patch_targets(test);
        let squares: f64 = targets
            .chunks_exact(p)
            .flat_map(|t| t.iter().zip(&mean).map(|(t, m)| (t - m).powi(2)))
            .sum();
        squares / targets.len().max(1) as f64
    }

    /// The loss targets of flat `images`: their patches `[patches, values]` (as
    /// [`GraphBuilder::patchify`] cuts them), normalized if `norm_pix_loss`, in f64.
    fn patch_targets(&self, images: &[f32]) -> Vec<f64> {
        let PatchGrid {
            channels: c,
            image_size: s,
            patch,
        } = self.encoder.grid;
        let x: Vec<f64> = images.iter().map(|&v| f64::from(v)).collect();
        let patches = reference::patchify(&x, [x.len() / (c * s * s), c, s, s], patch);
        if !self.norm_pix_loss {
            return patches;
        }
        let p = self.encoder.grid.patch_len();
        patches
            .chunks_exact(p)
            .flat_map(|t| {
                let mean = t.iter().sum::<f64>() / p as f64;
                let var = t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (p - 1) as f64;
                let std = (var + f64::from(NORM_PIX_EPS)).sqrt();
                t.iter().map(move |v| (v - mean) / std)
            })
            .collect()
    }

    /// Checks the configuration, naming what is inconsistent: the encoder
    /// ([`VitEncoder::problem`]), the decoder's blocks, the widths of the sin-cos
    /// tables, the mask ratio and the normalized targets.
    fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(config_error("MAE", self, why));
        let decoder = [self.decoder_dim, self.decoder_depth, self.decoder_heads];
        let blocks = self
            .encoder
            .problem()
            .or_else(|| blocks_problem("decoder", decoder, self.encoder.mlp_ratio));
        if let Some(why) = blocks {
            return bad(why);
        }
        for (what, width) in [("encoder", self.encoder.dim), ("decoder", self.decoder_dim)] {
            if !width.is_multiple_of(4) {
                return bad(format!(
                    "the {what} width {width} must be a multiple of 4 (the 2-D sin-cos table)"
                ));
            }
        }
        let (n, kept) = (self.encoder.grid.num_patches(), self.kept_patches());
        if !(0.0..1.0).contains(&self.mask_ratio) || kept == 0 || kept >= n {
            return bad(format!(
                "the mask ratio {} keeps {kept} of {n} patches; it must keep at least one and \
                 remove at least one",
                self.mask_ratio
            ));
        }
        if self.norm_pix_loss && self.encoder.grid.patch_len() < 2 {
            return bad("normalized targets need patches of at least 2 values".into());
        }
        Ok(())
    }

    /// Hidden width of the decoder's MLPs (the encoder's MLP ratio over its width).
    pub(crate) fn decoder_hidden(&self) -> usize {
        mlp_width(self.decoder_dim, self.encoder.mlp_ratio)
    }
}

impl Architecture for Mae {
    /// Images, no classes, their masked patches reconstructed.
    fn io(&self) -> ModelIo {
        let grid = self.encoder.grid;
        ModelIo {
            name: "mae",
            sample_shape: grid.sample_shape(),
            classes: 0,
            input: InputKind::Images,
            task: Task::Reconstruct(self.masking()),
        }
    }

    /// timm's `param_groups_weight_decay` / MAE's `add_weight_decay`: every tensor of
    /// at most one dimension and every bias (the tokens, 3-D, are decayed).
    fn no_weight_decay(&self) -> Result<Vec<String>> {
        Ok(self
            .parameters()?
            .into_iter()
            .filter(|p| p.shape.len() <= 1 || p.name.ends_with(".bias"))
            .map(|p| p.name)
            .collect())
    }

    fn parameters(&self) -> Result<Vec<ParamSpec>> {
        self.validate()?;
        let VitEncoder { grid, dim: d, .. } = self.encoder;
        let (dd, c, p) = (self.decoder_dim, grid.channels, grid.patch);
        let token = Init::normal(TOKEN_STD);
        let mut specs = vec![
            ParamSpec::new("cls_token", &[1, 1, d], token),
            ParamSpec::new("mask_token", &[1, 1, dd], token),
            ParamSpec::new(
                "patch_embed.proj.weight",
                &[d, c, p, p],
                xavier(grid.patch_len(), d),
            ),
            ParamSpec::new(
                "patch_embed.proj.bias",
                &[d],
                Init::torch_default(grid.patch_len()),
            ),
        ];
        specs.extend(self.encoder.block_params(xavier_linear));
        specs.extend(xavier_linear("decoder_embed", d, dd));
        let (depth, hidden) = (self.decoder_depth, self.decoder_hidden());
        specs.extend(stack_params(
            "decoder_blocks",
            depth,
            dd,
            hidden,
            xavier_linear,
        ));
        specs.extend(layer_norm("decoder_norm", dd));
        specs.extend(xavier_linear("decoder_pred", dd, grid.patch_len()));
        Ok(specs)
    }

    /// The reconstruction of `images` under the batch's masks (declared here).
    fn output(&self, g: &mut GraphBuilder, images: Var) -> Result<Output> {
        let batch = g.shape(images)[0];
        let masks = MaskVars::declare(g, batch, self.masking());
        let VitEncoder { grid, dim: d, .. } = self.encoder;
        let (n, dd) = (grid.num_patches(), self.decoder_dim);
        let patches = g.patchify(images, grid.patch)?;
        let x = linear(g, patches, "patch_embed.proj")?;
        // The table's class row is zero: the class token goes in without it.
        let pos = self.pos_embed(d).split_off(d);
        let pos = g.constant(&[1, n, d], pos)?;
        let x = g.add(x, pos)?;
        let x = g.gather_tokens(x, masks.keep)?;
        let cls = g.param("cls_token")?;
        let x = g.prepend_token(x, cls)?;
        let x = self.encoder.blocks(g, x)?;
        let x = linear(g, x, "decoder_embed")?;
        let mask_token = g.param("mask_token")?;
        let x = g.unshuffle_tokens(x, masks.restore, mask_token)?;
        let pos = g.constant(&[1, n + 1, dd], self.pos_embed(dd))?;
        let x = g.add(x, pos)?;
        let x = stack(
            g,
            x,
            "decoder_blocks",
            self.decoder_depth,
            self.decoder_heads,
        )?;
        let x = apply_layer_norm(g, x, "decoder_norm")?;
        let prediction = linear(g, x, "decoder_pred")?;
        // The class token's row has a zero target and a zero weight in the loss.
        let p = grid.patch_len();
        let zero = g.constant(&[p], vec![0.0; p])?;
        let target = g.prepend_token(patches, zero)?;
        let loss = g.masked_mse(prediction, target, masks.mask, self.norm_pix_loss)?;
        Ok(Output::Reconstruction(Reconstruction {
            masks,
            loss,
            prediction,
        }))
    }
}
