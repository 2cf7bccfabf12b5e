//! [`Vit`]: a vision transformer in the layout of timm's `VisionTransformer`.

use crate::error::Result;
use crate::model::arch::{
    Architecture, ModelIo, Output, ParamSpec, config_error, linear, torch_linear,
};
use crate::model::init::Init;
use crate::model::vit_encoder::VitEncoder;
use crate::nn::{GraphBuilder, Var};

/// timm's initialization scale for Linear weights, position embedding and class token.
const INIT_STD: f64 = 0.02;

/// A vision transformer like timm's `vit_tiny_patch16_224`, scaled to small images:
/// Conv2d patch embedding, class token, learned position embedding, the
/// [`VitEncoder`]'s pre-norm blocks and final LayerNorm, and a Linear head on the
/// class token.
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
    /// The encoder.
    #[serde(flatten)]
    pub encoder: VitEncoder,
    /// Number of classes.
    pub classes: usize,
}

impl Default for Vit {
    /// A small ViT for 28x28 digits: [`VitEncoder::default`] (patch 7, 16 patches +
    /// class token, width 64, 4 blocks of 4 heads, MLP ratio 2), 10 classes.
    fn default() -> Self {
        Self {
            encoder: VitEncoder::default(),
            classes: 10,
        }
    }
}

impl Vit {
    /// Checks the configuration: the encoder's [`VitEncoder::problem`] and the head.
    fn validate(&self) -> Result<()> {
        let head = (self.classes as u64).checked_mul(self.encoder.dim as u64);
        let why = self.encoder.problem().or_else(|| {
            (self.classes == 0 || head.is_none())
                .then(|| "the classes must be positive and the head's size fit in 64 bits".into())
        });
        match why {
            Some(why) => Err(config_error("ViT", self, why)),
            None => Ok(()),
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

impl Architecture for Vit {
    fn io(&self) -> ModelIo {
        ModelIo::image_classifier("vit", self.encoder.grid.sample_shape(), self.classes)
    }

    fn parameters(&self) -> Result<Vec<ParamSpec>> {
        self.validate()?;
        let VitEncoder { grid, dim: d, .. } = self.encoder;
        let normal = Init::trunc_normal(INIT_STD);
        let [mut pw, pb] = torch_linear("patch_embed.proj", grid.patch_len(), d);
        pw.shape = vec![d, grid.channels, grid.patch, grid.patch];
        let mut specs = vec![
            ParamSpec::new("cls_token", &[1, 1, d], normal),
            ParamSpec::new("pos_embed", &[1, grid.num_patches() + 1, d], normal),
            pw,
            pb,
        ];
        specs.extend(self.encoder.block_params(timm_linear));
        specs.extend(timm_linear("head", d, self.classes));
        Ok(specs)
    }

    fn output(&self, g: &mut GraphBuilder, images: Var) -> Result<Output> {
        let patches = g.patchify(images, self.encoder.grid.patch)?;
        let tokens = linear(g, patches, "patch_embed.proj")?;
        let cls = g.param("cls_token")?;
        let tokens = g.prepend_token(tokens, cls)?;
        let pos = g.param("pos_embed")?;
        let x = g.add(tokens, pos)?;
        let x = self.encoder.blocks(g, x)?;
        let cls = g.select_token(x, 0)?;
        linear(g, cls, "head").map(Output::Logits)
    }
}
