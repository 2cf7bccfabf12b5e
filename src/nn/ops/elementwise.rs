//! Pointwise ops: activations ([`Pointwise`]) and broadcast adds ([`Add`]: residual,
//! bias and position embedding), plus the broadcast gradient other ops share.

use crate::error::{Error, Result};
use crate::nn::bindings::{DY, Family, OTHER, OUT, X, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{Activation, GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, Plan};
use crate::nn::tensor::{DType, Tensor, numel};

uniform_block! {
    /// The uniform block of `nn_elementwise.wgsl`.
    struct EwParams {
        /// Elements of the invocation space (the source, for `sum_rows`).
        len: u32,
        /// Length of the broadcast operand (its elements repeat every `period`).
        period: u32,
        /// Activation kind ([`Activation::code`]).
        mode: u32,
        /// [`GradMode::flag`] of the gradient written.
        accumulate: u32,
    }
}

/// The bindings of `nn_elementwise.wgsl`.
pub(crate) const ELEMENTWISE: Family = Family::new::<EwParams>(&[X, OTHER, DY, OUT]);

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
    cx.launch(Kernel::SumRows, &params, &[(DY, src), (OUT, dst)], period)
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
        let plan = Plan {
            forward: Kernel::ActivationForward,
            backward: &[Kernel::ActivationBackward],
        };
        let params = |t: &Tensor, mode: GradMode| {
            let n = t.len() as u32;
            let p = EwParams {
                len: n,
                period: n,
                mode: self.kind.code(),
                accumulate: mode.flag(),
            };
            (p, t.len())
        };
        Ok(cx.compile_plan(&[self.x], out, modes, plan, params))
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

    /// Backward, `a`'s gradient is `dy` and `b`'s is `dy` summed over the leading
    /// dimensions (`sum_rows` over `period` columns, a copy when nothing broadcasts).
    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let plan = Plan {
            forward: Kernel::AddForward,
            backward: &[Kernel::Accumulate, Kernel::SumRows],
        };
        let len = cx.value(out).len();
        let params = |t: &Tensor, mode: GradMode| {
            let p = EwParams {
                len: len as u32,
                period: self.period as u32,
                mode: 0,
                accumulate: mode.flag(),
            };
            (p, t.len())
        };
        Ok(cx.compile_plan(&[self.a, self.b], out, modes, plan, params))
    }
}
