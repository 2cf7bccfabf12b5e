//! Pointwise ops: activations ([`Pointwise`]) and broadcast adds ([`Add`]: residual,
//! bias and position embedding), plus the gradient helpers other ops share.

use crate::error::{Error, Result};
use crate::nn::dispatch::{Dispatch, linear_grid};
use crate::nn::graph::{Activation, GraphBuilder, Var};
use crate::nn::kernels::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, wanted};
use crate::nn::tensor::{DType, Tensor, numel};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EwParams {
    len: u32,
    period: u32,
    mode: u32,
    accumulate: u32,
}

/// `dst (+)= src` over `dst`'s elements.
pub(crate) fn accumulate(
    cx: &CompileCx<'_>,
    src: &Tensor,
    dst: &Tensor,
    mode: GradMode,
) -> Dispatch {
    let params = EwParams {
        len: dst.len() as u32,
        period: dst.len() as u32,
        mode: 0,
        accumulate: mode.flag(),
    };
    cx.dispatch(
        Kernel::Accumulate,
        &params,
        &[(3, src), (4, dst)],
        linear_grid(dst.len()),
    )
}

/// `dst[c] (+)= sum_r src[r * period + c]` for `c < period`: the gradient of an
/// operand broadcast over leading dimensions.
pub(crate) fn sum_rows(
    cx: &CompileCx<'_>,
    src: &Tensor,
    dst: &Tensor,
    period: usize,
    mode: GradMode,
) -> Dispatch {
    let params = EwParams {
        len: src.len() as u32,
        period: period as u32,
        mode: 0,
        accumulate: mode.flag(),
    };
    cx.dispatch(
        Kernel::SumRows,
        &params,
        &[(3, src), (4, dst)],
        linear_grid(period),
    )
}

/// `y = f(x)` elementwise.
#[derive(Debug)]
pub(crate) struct Pointwise {
    x: Var,
    kind: Activation,
}

impl Pointwise {
    pub fn new(g: &GraphBuilder, x: Var, kind: Activation) -> Result<(Self, Vec<usize>)> {
        if g.dtype(x) != DType::F32 {
            return Err(Error::shape("activation", "input must be an f32 tensor"));
        }
        Ok((Self { x, kind }, g.shape(x).to_vec()))
    }
}

impl Op for Pointwise {
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
        let n = x.len();
        let params = |mode: GradMode| EwParams {
            len: n as u32,
            period: n as u32,
            mode: self.kind.code(),
            accumulate: mode.flag(),
        };
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::ActivationForward,
            &params(GradMode::Overwrite),
            &[(1, x), (4, y)],
            linear_grid(n),
        ));
        if let Some(dy) = cx.out_grad(out)
            && let Some((dx, mode)) = wanted(cx, self.x, modes[0])
        {
            compiled.backward.push(cx.dispatch(
                Kernel::ActivationBackward,
                &params(mode),
                &[(1, x), (3, &dy), (4, dx)],
                linear_grid(n),
            ));
        }
        Ok(compiled)
    }
}

/// `y = a + b` with `b` broadcast over the leading dimensions of `a`.
#[derive(Debug)]
pub(crate) struct Add {
    a: Var,
    b: Var,
    period: usize,
}

impl Add {
    pub fn new(g: &GraphBuilder, a: Var, b: Var) -> Result<(Self, Vec<usize>)> {
        if g.dtype(a) != DType::F32 || g.dtype(b) != DType::F32 {
            return Err(Error::shape("add", "operands must be f32 tensors"));
        }
        let (sa, sb) = (g.shape(a), g.shape(b));
        let first = sb.iter().position(|&d| d != 1).unwrap_or(sb.len());
        let trailing = &sb[first..];
        if trailing.len() > sa.len() || sa[sa.len() - trailing.len()..] != *trailing {
            return Err(Error::shape(
                "add",
                format!("{sb:?} does not broadcast to {sa:?}"),
            ));
        }
        Ok((
            Self {
                a,
                b,
                period: numel(trailing),
            },
            sa.to_vec(),
        ))
    }
}

impl Op for Add {
    fn inputs(&self) -> Vec<Var> {
        vec![self.a, self.b]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let (a, b, y) = (cx.value(self.a), cx.value(self.b), cx.value(out));
        let params = EwParams {
            len: y.len() as u32,
            period: self.period as u32,
            mode: 0,
            accumulate: 0,
        };
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::AddForward,
            &params,
            &[(1, a), (2, b), (4, y)],
            linear_grid(y.len()),
        ));
        let Some(dy) = cx.out_grad(out) else {
            return Ok(compiled);
        };
        if let Some((da, mode)) = wanted(cx, self.a, modes[0]) {
            compiled.backward.push(accumulate(cx, &dy, da, mode));
        }
        if let Some((db, mode)) = wanted(cx, self.b, modes[1]) {
            compiled.backward.push(if self.period == dy.len() {
                accumulate(cx, &dy, db, mode)
            } else {
                sum_rows(cx, &dy, db, self.period, mode)
            });
        }
        Ok(compiled)
    }
}

/// The layout of [`EwParams`], for the test against naga's layout of the WGSL struct.
#[cfg(test)]
pub(super) fn mirror() -> crate::wgsl::MirrorLayout {
    crate::wgsl::mirror_layout!(EwParams, "EwParams", [len, period, mode, accumulate])
}
