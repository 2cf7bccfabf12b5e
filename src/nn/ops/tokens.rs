//! Token plumbing of a vision transformer: [`Patchify`] (images to patch tokens),
//! [`Prepend`] (class token) and [`Pool`] (mean over tokens, or one token).

use crate::error::{Error, Result};
use crate::nn::dispatch::linear_grid;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::kernels::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, wanted};
use crate::nn::tensor::{DType, numel};

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct TokParams {
    len: u32,
    batch: u32,
    tokens: u32,
    dim: u32,
    channels: u32,
    height: u32,
    width: u32,
    patch: u32,
    mode: u32,
    index: u32,
    accumulate: u32,
    pad: u32,
}

fn check_f32(g: &GraphBuilder, op: &str, vars: &[Var]) -> Result<()> {
    match vars.iter().all(|&v| g.dtype(v) == DType::F32) {
        true => Ok(()),
        false => Err(Error::shape(op, "operands must be f32 tensors")),
    }
}

/// Images `[B, C, H, W]` to tokens `[B, (H/p) (W/p), C p p]`.
#[derive(Debug)]
pub(crate) struct Patchify {
    images: Var,
    params: TokParams,
}

impl Patchify {
    pub fn new(g: &GraphBuilder, images: Var, patch: usize) -> Result<(Self, Vec<usize>)> {
        check_f32(g, "patchify", &[images])?;
        let s = g.shape(images);
        if s.len() != 4 || patch == 0 || !s[2].is_multiple_of(patch) || !s[3].is_multiple_of(patch)
        {
            return Err(Error::shape(
                "patchify",
                format!(
                    "images {s:?} must be [batch, channels, height, width] divisible by patch {patch}"
                ),
            ));
        }
        let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
        let tokens = (h / patch) * (w / patch);
        let dim = c * patch * patch;
        let params = TokParams {
            batch: b as u32,
            tokens: tokens as u32,
            dim: dim as u32,
            channels: c as u32,
            height: h as u32,
            width: w as u32,
            patch: patch as u32,
            ..Default::default()
        };
        Ok((Self { images, params }, vec![b, tokens, dim]))
    }
}

impl Op for Patchify {
    fn inputs(&self) -> Vec<Var> {
        vec![self.images]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let (x, y) = (cx.value(self.images), cx.value(out));
        let mut compiled = Compiled::default();
        let fwd = TokParams {
            len: y.len() as u32,
            ..self.params
        };
        compiled.forward.push(cx.dispatch(
            Kernel::PatchifyForward,
            &fwd,
            &[(1, x), (4, y)],
            linear_grid(y.len()),
        ));
        if let Some(dy) = cx.out_grad(out)
            && let Some((dx, mode)) = wanted(cx, self.images, modes[0])
        {
            let bwd = TokParams {
                len: dx.len() as u32,
                accumulate: mode.flag(),
                ..self.params
            };
            compiled.backward.push(cx.dispatch(
                Kernel::PatchifyBackward,
                &bwd,
                &[(3, &dy), (4, dx)],
                linear_grid(dx.len()),
            ));
        }
        Ok(compiled)
    }
}

/// `[B, N, D]` and a token `[D]` to `[B, N + 1, D]`, the token first.
#[derive(Debug)]
pub(crate) struct Prepend {
    tokens: Var,
    token: Var,
    params: TokParams,
}

impl Prepend {
    pub fn new(g: &GraphBuilder, tokens: Var, token: Var) -> Result<(Self, Vec<usize>)> {
        check_f32(g, "prepend_token", &[tokens, token])?;
        let (s, st) = (g.shape(tokens), g.shape(token));
        let dim = *s.last().unwrap_or(&0);
        if s.len() != 3 || st.last() != Some(&dim) || numel(st) != dim {
            return Err(Error::shape(
                "prepend_token",
                format!("token {st:?} does not fit tokens {s:?} ([batch, n, dim] and [dim])"),
            ));
        }
        let params = TokParams {
            batch: s[0] as u32,
            tokens: s[1] as u32,
            dim: dim as u32,
            ..Default::default()
        };
        Ok((
            Self {
                tokens,
                token,
                params,
            },
            vec![s[0], s[1] + 1, dim],
        ))
    }
}

impl Op for Prepend {
    fn inputs(&self) -> Vec<Var> {
        vec![self.tokens, self.token]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let (x, t, y) = (cx.value(self.tokens), cx.value(self.token), cx.value(out));
        let mut compiled = Compiled::default();
        let fwd = TokParams {
            len: y.len() as u32,
            ..self.params
        };
        compiled.forward.push(cx.dispatch(
            Kernel::PrependForward,
            &fwd,
            &[(1, x), (2, t), (4, y)],
            linear_grid(y.len()),
        ));
        let Some(dy) = cx.out_grad(out) else {
            return Ok(compiled);
        };
        if let Some((dx, mode)) = wanted(cx, self.tokens, modes[0]) {
            let bwd = TokParams {
                len: dx.len() as u32,
                accumulate: mode.flag(),
                ..self.params
            };
            compiled.backward.push(cx.dispatch(
                Kernel::PrependBackwardTokens,
                &bwd,
                &[(3, &dy), (4, dx)],
                linear_grid(dx.len()),
            ));
        }
        if let Some((dt, mode)) = wanted(cx, self.token, modes[1]) {
            let bwd = TokParams {
                len: dt.len() as u32,
                accumulate: mode.flag(),
                ..self.params
            };
            compiled.backward.push(cx.dispatch(
                Kernel::PrependBackwardToken,
                &bwd,
                &[(3, &dy), (4, dt)],
                linear_grid(dt.len()),
            ));
        }
        Ok(compiled)
    }
}

/// How [`Pool`] reduces the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolMode {
    /// The mean over tokens (`POOL_MEAN`).
    Mean,
    /// One token, by index (`POOL_SELECT`).
    Select(usize),
}

/// `[B, N, D]` to `[B, D]`.
#[derive(Debug)]
pub(crate) struct Pool {
    x: Var,
    params: TokParams,
}

impl Pool {
    pub fn new(g: &GraphBuilder, x: Var, mode: PoolMode) -> Result<(Self, Vec<usize>)> {
        check_f32(g, "pool", &[x])?;
        let s = g.shape(x);
        if s.len() != 3 {
            return Err(Error::shape(
                "pool",
                format!("input {s:?} must be [batch, n, dim]"),
            ));
        }
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
        let params = TokParams {
            batch: s[0] as u32,
            tokens: s[1] as u32,
            dim: s[2] as u32,
            mode,
            index: index as u32,
            ..Default::default()
        };
        Ok((Self { x, params }, vec![s[0], s[2]]))
    }
}

impl Op for Pool {
    fn inputs(&self) -> Vec<Var> {
        vec![self.x]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let (x, y) = (cx.value(self.x), cx.value(out));
        let mut compiled = Compiled::default();
        let fwd = TokParams {
            len: y.len() as u32,
            ..self.params
        };
        compiled.forward.push(cx.dispatch(
            Kernel::PoolForward,
            &fwd,
            &[(1, x), (4, y)],
            linear_grid(y.len()),
        ));
        if let Some(dy) = cx.out_grad(out)
            && let Some((dx, mode)) = wanted(cx, self.x, modes[0])
        {
            let bwd = TokParams {
                len: dx.len() as u32,
                accumulate: mode.flag(),
                ..self.params
            };
            compiled.backward.push(cx.dispatch(
                Kernel::PoolBackward,
                &bwd,
                &[(3, &dy), (4, dx)],
                linear_grid(dx.len()),
            ));
        }
        Ok(compiled)
    }
}

/// The layout of [`TokParams`], for the test against naga's layout of the WGSL struct.
#[cfg(test)]
pub(super) fn mirror() -> crate::wgsl::MirrorLayout {
    crate::wgsl::mirror_layout!(
        TokParams,
        "TokParams",
        [
            len, batch, tokens, dim, channels, height, width, mode, index, accumulate
        ]
    )
}
