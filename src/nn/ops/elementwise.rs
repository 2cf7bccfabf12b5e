//! Pointwise ops: activations ([`pointwise`]), SwiGLU's gate ([`silu_gate`]) and
//! broadcast adds ([`add`]: residual, bias and position embedding), plus the broadcast
//! gradient other ops share.

use crate::error::Result;
use crate::nn::bindings::{DY, Family, OTHER, OUT, X, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{Activation, GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, GradMode, Plan, PlanOp, check_f32, reject_shape};
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

impl EwParams {
    fn new(len: u32, period: u32, mode: u32, grad: GradMode) -> Self {
        Self {
            len,
            period,
            mode,
            accumulate: grad.flag(),
        }
    }
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
    let params = EwParams::new(src.len() as u32, period as u32, 0, mode);
    cx.launch(Kernel::SumRows, &params, &[(DY, src), (OUT, dst)], period)
}

/// `y = f(x)` elementwise.
pub(crate) fn pointwise(
    g: &GraphBuilder,
    x: Var,
    kind: Activation,
) -> Result<(PlanOp, Vec<usize>)> {
    reject_shape(
        g.dtype(x) != DType::F32,
        "activation",
        || "input must be an f32 tensor",
    )?;
    let plan = Plan::new(Kernel::ActivationForward, &[Kernel::ActivationBackward]);
    let mode = kind.code();
    let op = PlanOp::new(vec![x], plan, move |t: &Tensor, grad: GradMode| {
        let n = t.len() as u32;
        (EwParams::new(n, n, mode, grad), t.len())
    });
    Ok((op, g.shape(x).to_vec()))
}

/// `y = a + b` with `b` broadcast over the leading dimensions of `a`. Backward, `a`'s
/// gradient is `dy` and `b`'s is `dy` summed over the leading dimensions (`sum_rows`
/// over `period` columns, a copy when nothing broadcasts).
pub(crate) fn add(g: &GraphBuilder, a: Var, b: Var) -> Result<(PlanOp, Vec<usize>)> {
    check_f32(g, "add", &[a, b])?;
    let (sa, sb) = (g.shape(a), g.shape(b));
    let first = sb.iter().position(|&d| d != 1).unwrap_or(sb.len());
    let trailing = &sb[first..];
    reject_shape(
        trailing.len() > sa.len() || sa[sa.len() - trailing.len()..] != *trailing,
        "add",
        || format!("{sb:?} does not broadcast to {sa:?}"),
    )?;
    let plan = Plan::new(Kernel::AddForward, &[Kernel::Accumulate, Kernel::SumRows]);
    let (len, period) = (numel(sa) as u32, numel(trailing) as u32);
    let op = PlanOp::new(vec![a, b], plan, move |t: &Tensor, grad: GradMode| {
        (EwParams::new(len, period, 0, grad), t.len())
    });
    Ok((op, sa.to_vec()))
}

/// `y = silu(gate) * up` elementwise (SwiGLU). Backward, `gate`'s gradient is
/// `dy * up * silu'(gate)` and `up`'s is `dy * silu(gate)`.
pub(crate) fn silu_gate(g: &GraphBuilder, gate: Var, up: Var) -> Result<(PlanOp, Vec<usize>)> {
    check_f32(g, "silu_gate", &[gate, up])?;
    let (sg, su) = (g.shape(gate), g.shape(up));
    reject_shape(sg != su, "silu_gate", || {
        format!("gate {sg:?} and up {su:?} must be tensors of one shape")
    })?;
    let plan = Plan::new(
        Kernel::SiluGateForward,
        &[Kernel::SiluGateBackwardGate, Kernel::SiluGateBackwardUp],
    );
    let op = PlanOp::new(vec![gate, up], plan, |t: &Tensor, grad: GradMode| {
        let n = t.len() as u32;
        (EwParams::new(n, n, 0, grad), t.len())
    });
    Ok((op, sg.to_vec()))
}
