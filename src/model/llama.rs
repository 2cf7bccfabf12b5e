//! [`Llama`]: a LLaMA-style causal language model in the layout of Hugging Face's
//! `LlamaForCausalLM`.

use crate::error::Result;
use crate::model::arch::{Architecture, InputKind, ModelIo, Output, ParamSpec, Task, config_error};
use crate::model::init::Init;
use crate::nn::{GraphBuilder, Var};

/// HF's `initializer_range`: every Linear weight and the embedding are N(0, 0.02).
const INIT_STD: f64 = 0.02;
/// Most blocks a configuration may declare: a bound on the work of listing the
/// parameters of a configuration read from a file.
const MAX_DEPTH: usize = 1024;
/// The prefix of the decoder's parameters.
const DECODER: &str = "model";
/// The embedding table's name (also the output head's weight when tied).
const EMBED: &str = "model.embed_tokens.weight";
/// The output head's name when untied.
const LM_HEAD: &str = "lm_head.weight";

/// A LLaMA-style decoder over token ids `[batch, context]`: token embedding, `depth`
/// pre-norm blocks (`x + o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x))))`, then
/// `x + down(silu(gate(n2(x))) * up(n2(x)))`) with RMSNorm, rotary position
/// embedding (HF's `rotate_half` convention) and causal multi-head attention, a
/// final RMSNorm and a bias-free output head, optionally tied to the embedding.
/// The logits of every position predict the next token: `[batch, context, vocab]`.
///
/// Parameter names are HF's state-dict keys (`model.embed_tokens.weight`,
/// `model.layers.0.self_attn.q_proj.weight`, ..., `model.layers.0.mlp.gate_proj.weight`,
/// ..., `model.layers.0.input_layernorm.weight`,
/// `model.layers.0.post_attention_layernorm.weight`, `model.norm.weight`,
/// `lm_head.weight` unless tied), in the order of `named_parameters()`, so
/// `LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=dim,
/// intermediate_size=ffn_hidden, num_hidden_layers=depth, num_attention_heads=heads,
/// num_key_value_heads=heads, max_position_embeddings=context, rms_norm_eps=eps,
/// rope_theta=rope_theta, tie_word_embeddings=tied, attention_bias=False,
/// mlp_bias=False))` loads them. Initialization as HF's `_init_weights`: Linear
/// weights and the embedding N(0, 0.02), RMSNorm weights 1 (seeded and
/// platform-independent, see [`Init`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Llama {
    /// Vocabulary size (token ids and classes).
    pub vocab: usize,
    /// Tokens per sample (the sequence length trained on).
    pub context: usize,
    /// Width of the residual stream.
    pub dim: usize,
    /// Decoder blocks.
    pub depth: usize,
    /// Attention heads; divides `dim`, and the head width `dim / heads` is even.
    pub heads: usize,
    /// Hidden width of each block's SwiGLU feed-forward.
    pub ffn_hidden: usize,
    /// Whether the output head reuses the embedding table (no `lm_head.weight`).
    pub tied: bool,
    /// RMSNorm epsilon, positive.
    pub eps: f32,
    /// RoPE base, above 1.
    pub rope_theta: f32,
}

impl Default for Llama {
    /// The bundled Shakespeare's 73 characters, context 64, width 64, 2 blocks of 4
    /// heads, SwiGLU hidden 172 (HF's 8/3 of the width, rounded), untied, eps 1e-6,
    /// RoPE base 10000.
    fn default() -> Self {
        Self {
            vocab: 73,
            context: 64,
            dim: 64,
            depth: 2,
            heads: 4,
            ffn_hidden: 172,
            tied: false,
            eps: 1e-6,
            rope_theta: 10_000.0,
        }
    }
}

impl Llama {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.heads.max(1)
    }

    /// Elements of the largest parameter tensor, `None` if a size overflows.
    fn largest_tensor(&self) -> Option<u64> {
        let n = |x: usize| u64::try_from(x).ok();
        let (v, d, f) = (n(self.vocab)?, n(self.dim)?, n(self.ffn_hidden)?);
        [v.checked_mul(d), d.checked_mul(d), f.checked_mul(d)]
            .into_iter()
            .try_fold(0, |max: u64, size| Some(max.max(size?)))
    }

    /// Checks the configuration, naming what is inconsistent.
    fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(config_error("LLaMA", self, why));
        let sizes = [
            self.vocab,
            self.context,
            self.dim,
            self.depth,
            self.heads,
            self.ffn_hidden,
        ];
        if sizes.contains(&0) {
            return bad("vocab, context, dim, depth, heads and ffn_hidden must be positive");
        }
        if self.depth > MAX_DEPTH || self.largest_tensor().is_none() {
            return bad(&format!(
                "at most {MAX_DEPTH} blocks, and every tensor's size must fit in 64 bits"
            ));
        }
        if !self.dim.is_multiple_of(self.heads) {
            return bad(&format!(
                "{} heads do not divide the width {}",
                self.heads, self.dim
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(&format!(
                "the head width {} must be even for the rotary embedding",
                self.head_dim()
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps must be positive and finite");
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad("rope_theta must be finite and above 1");
        }
        Ok(())
    }
}

/// A bias-free Linear weight `[out, fan_in]`, N(0, 0.02).
fn weight(name: String, fan_in: usize, out: usize) -> ParamSpec {
    ParamSpec::new(name, &[out, fan_in], Init::normal(INIT_STD))
}

/// An RMSNorm weight `[dim]`, ones.
fn norm(name: String, dim: usize) -> ParamSpec {
    ParamSpec::new(name, &[dim], Init::Constant(1.0))
}

impl Llama {
    /// `x @ {name}^T` (bias-free).
    fn project(g: &mut GraphBuilder, x: Var, name: &str) -> Result<Var> {
        let w = g.param(name)?;
        g.linear(x, w, None)
    }

    /// RMSNorm of `x` with the weight `name`.
    fn rms_norm(&self, g: &mut GraphBuilder, x: Var, name: &str) -> Result<Var> {
        let w = g.param(name)?;
        g.rms_norm(x, w, self.eps)
    }

    /// One decoder block on the residual stream `x`.
    fn block(&self, g: &mut GraphBuilder, x: Var, layer: usize) -> Result<Var> {
        let p = format!("{DECODER}.layers.{layer}");
        let h = self.rms_norm(g, x, &format!("{p}.input_layernorm.weight"))?;
        let [q, k, v] =
            ["q", "k", "v"].map(|n| Self::project(g, h, &format!("{p}.self_attn.{n}_proj.weight")));
        let (q, k) = (
            g.rope(q?, self.heads, self.rope_theta)?,
            g.rope(k?, self.heads, self.rope_theta)?,
        );
        let a = g.causal_attention(q, k, v?, self.heads)?;
        let a = Self::project(g, a, &format!("{p}.self_attn.o_proj.weight"))?;
        let x = g.add(x, a)?;
        let h = self.rms_norm(g, x, &format!("{p}.post_attention_layernorm.weight"))?;
        let gate = Self::project(g, h, &format!("{p}.mlp.gate_proj.weight"))?;
        let up = Self::project(g, h, &format!("{p}.mlp.up_proj.weight"))?;
        let m = g.silu_gate(gate, up)?;
        let m = Self::project(g, m, &format!("{p}.mlp.down_proj.weight"))?;
        g.add(x, m)
    }
}

impl Architecture for Llama {
    /// Token windows of `context` ids, the next token of each id its label.
    fn io(&self) -> ModelIo {
        ModelIo {
            name: "llama",
            sample_shape: vec![self.context],
            classes: self.vocab,
            input: InputKind::Tokens,
            task: Task::Classify,
        }
    }

    fn parameters(&self) -> Result<Vec<ParamSpec>> {
        self.validate()?;
        let (d, f) = (self.dim, self.ffn_hidden);
        let mut specs = vec![ParamSpec::new(
            EMBED,
            &[self.vocab, d],
            Init::normal(INIT_STD),
        )];
        for l in 0..self.depth {
            let p = format!("{DECODER}.layers.{l}");
            for n in ["q", "k", "v", "o"] {
                specs.push(weight(format!("{p}.self_attn.{n}_proj.weight"), d, d));
            }
            specs.push(weight(format!("{p}.mlp.gate_proj.weight"), d, f));
            specs.push(weight(format!("{p}.mlp.up_proj.weight"), d, f));
            specs.push(weight(format!("{p}.mlp.down_proj.weight"), f, d));
            specs.push(norm(format!("{p}.input_layernorm.weight"), d));
            specs.push(norm(format!("{p}.post_attention_layernorm.weight"), d));
        }
        specs.push(norm(format!("{DECODER}.norm.weight"), d));
        if !self.tied {
            specs.push(weight(LM_HEAD.into(), d, self.vocab));
        }
        Ok(specs)
    }

    fn output(&self, g: &mut GraphBuilder, ids: Var) -> Result<Output> {
        let table = g.param(EMBED)?;
        let mut x = g.embedding(table, ids)?;
        for l in 0..self.depth {
            x = self.block(g, x, l)?;
        }
        let h = self.rms_norm(g, x, &format!("{DECODER}.norm.weight"))?;
        let head = if self.tied { EMBED } else { LM_HEAD };
        Self::project(g, h, head).map(Output::Logits)
    }
}
