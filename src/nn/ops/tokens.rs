//! Token plumbing of a vision transformer: [`patchify`] (images to patch tokens),
//! [`prepend`] (class token) and [`pool`] (mean over tokens, or one token).

use crate::error::{Error, Result};
use crate::nn::bindings::{DY, Family, IDS, OTHER, OUT, X, uniform_block};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{GradMode, Plan, PlanOp, check_f32, reject_shape};
use crate::nn::tensor::{Tensor, numel};

uniform_block! {
    /// The uniform block of `nn_tokens.wgsl`.
    struct TokParams {
        /// Elements of the invocation space (the tensor the kernel writes).
        len: u32,
        batch: u32,
        /// Tokens (N); for patchify the patches per image (P).
        tokens: u32,
        /// Features per token (D); for patchify C * p * p.
        dim: u32,
        channels: u32,
        height: u32,
        width: u32,
        /// Patch side p.
        patch_size: u32,
        /// `POOL_MEAN` (0) or `POOL_SELECT` (1).
        mode: u32,
        /// The selected token (`POOL_SELECT`).
        index: u32,
        /// [`GradMode::flag`] of the gradient written.
        accumulate: u32,
        /// Source tokens of a gather (S).
        sources: u32,
    }
}

/// The bindings of `nn_tokens.wgsl`.
pub(crate) const TOKENS: Family = Family::new::<TokParams>(&[X, OTHER, IDS, DY, OUT]);

/// A token op: every kernel runs one invocation per element of the tensor it
/// writes, with `params` completed by that size and the gradient mode.
fn token_op(inputs: Vec<Var>, plan: Plan, params: TokParams) -> PlanOp {
    PlanOp::new(inputs, plan, move |t: &Tensor, mode: GradMode| {
        let p = TokParams {
            len: t.len() as u32,
            accumulate: mode.flag(),
            ..params
        };
        (p, t.len())
    })
}

/// Images `[B, C, H, W]` to tokens `[B, (H/p) (W/p), C p p]`.
pub(crate) fn patchify(
    g: &GraphBuilder,
    images: Var,
    patch: usize,
) -> Result<(PlanOp, Vec<usize>)> {
    check_f32(g, "patchify", &[images])?;
    let s = g.shape(images);
    reject_shape(
        s.len() != 4 || patch == 0 || !s[2].is_multiple_of(patch) || !s[3].is_multiple_of(patch),
        "patchify",
        || {
            format!(
                "images {s:?} must be [batch, channels, height, width] divisible by patch {patch}"
            )
        },
    )?;
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    let tokens = (h / patch) * (w / patch);
    let dim = c * patch * patch;
    let plan = Plan::new(Kernel::PatchifyForward, &[Kernel::PatchifyBackward]);
    let params = TokParams {
        batch: b as u32,
        tokens: tokens as u32,
        dim: dim as u32,
        channels: c as u32,
        height: h as u32,
        width: w as u32,
        patch_size: patch as u32,
        ..Default::default()
    };
    let op = token_op(vec![images], plan, params);
    Ok((op, vec![b, tokens, dim]))
}

/// `[B, N, D]` and a token `[D]` to `[B, N + 1, D]`, the token first.
pub(crate) fn prepend(g: &GraphBuilder, tokens: Var, token: Var) -> Result<(PlanOp, Vec<usize>)> {
    check_f32(g, "prepend_token", &[tokens, token])?;
    let (s, st) = (g.shape(tokens), g.shape(token));
    let dim = *s.last().unwrap_or(&0);
    reject_shape(
        s.len() != 3 || st.last() != Some(&dim) || numel(st) != dim,
        "prepend_token",
        || format!("token {st:?} does not fit tokens {s:?} ([batch, n, dim] and [dim])"),
    )?;
    let plan = Plan::new(
        Kernel::PrependForward,
        &[Kernel::PrependBackwardTokens, Kernel::PrependBackwardToken],
    );
    let params = TokParams {
        batch: s[0] as u32,
        tokens: s[1] as u32,
        dim: dim as u32,
        ..Default::default()
    };
    let op = token_op(vec![tokens, token], plan, params);
    Ok((op, vec![s[0], s[1] + 1, dim]))
}

/// How [`pool`] reduces the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolMode {
    /// The mean over tokens (`POOL_MEAN`).
    Mean,
    /// One token, by index (`POOL_SELECT`).
    Select(usize),
}

/// `[B, N, D]` to `[B, D]`.
pub(crate) fn pool(g: &GraphBuilder, x: Var, mode: PoolMode) -> Result<(PlanOp, Vec<usize>)> {
    check_f32(g, "pool", &[x])?;
    let s = g.shape(x);
    reject_shape(s.len() != 3, "pool", || {
        format!("input {s:?} must be [batch, n, dim]")
    })?;
    let (mode, index) = match mode {
        PoolMode::Mean => (0, 0),
        PoolMode::Select(i) if i < s[1] => (1, i),
        PoolMode::Select(i) => {
            return Err(Error::shape(
                "select_token",
                format!("token {i} of {s:?} does not exist"),
            ));
        }
    };
    let plan = Plan::new(Kernel::PoolForward, &[Kernel::PoolBackward]);
    let params = TokParams {
        batch: s[0] as u32,
        tokens: s[1] as u32,
        dim: s[2] as u32,
        mode,
        index: index as u32,
        ..Default::default()
    };
    let op = token_op(vec![x], plan, params);
    Ok((op, vec![s[0], s[2]]))
}
