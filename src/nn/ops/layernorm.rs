//! LayerNorm and RMSNorm over the last dimension: one op, RMSNorm being LayerNorm
//! without centering and without a bias (`nn_layernorm.wgsl` shares their reductions).

use crate::error::{Error, Result};
use crate::nn::bindings::{
    BIAS, DBIAS, DWEIGHT, DX, DY, Family, STATS, WEIGHT, X, Y, uniform_block,
};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op, reject_shape, wanted};
use crate::nn::tensor::{DType, Tensor, numel};

uniform_block! {
    /// The uniform block of `nn_layernorm.wgsl`.
    struct LnParams {
        rows: u32,
        dim: u32,
        eps: f32,
        /// [`GradMode::flag`] of each gradient (0 where it is not written).
        accumulate_x: u32,
        accumulate_weight: u32,
        accumulate_bias: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// The bindings of `nn_layernorm.wgsl`.
pub(crate) const LAYERNORM: Family =
    Family::new::<LnParams>(&[X, WEIGHT, BIAS, Y, STATS, DY, DX, DWEIGHT, DBIAS]);

/// `(rows, dim)` of a normalization over the last dimension of `x` with per-feature
/// `params` (`[dim]` each), checking shapes, dtypes and `eps`: shared by LayerNorm and
/// RMSNorm (`op` names the op in errors).
fn norm_rows(
    g: &GraphBuilder,
    op: &str,
    x: Var,
    params: &[Var],
    eps: f32,
) -> Result<(usize, usize)> {
    let sx = g.shape(x);
    let dim = *sx.last().unwrap_or(&0);
    let bad_param = |&v: &Var| g.dtype(v) != DType::F32 || g.shape(v) != [dim];
    let bad_input = g.dtype(x) != DType::F32 || dim == 0;
    reject_shape(bad_input || params.iter().any(bad_param), op, || {
        let got: Vec<&[usize]> = params.iter().map(|&v| g.shape(v)).collect();
        format!(
            "input {sx:?} (f32, last dimension at least 1) needs f32 parameters of shape [{dim}], got {got:?}"
        )
    })?;
    if eps.is_nan() || eps <= 0.0 {
        return Err(Error::InvalidConfig(format!(
            "{op} eps {eps} must be positive"
        )));
    }
    Ok((numel(sx) / dim, dim))
}

/// LayerNorm, `(x - mean) / sqrt(var + eps) * weight + bias` per row, or (without a
/// bias) RMSNorm, `x / sqrt(mean(x^2) + eps) * weight` per row.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    x: Var,
    weight: Var,
    /// LayerNorm's shift; `None` for RMSNorm.
    bias: Option<Var>,
    eps: f32,
    rows: usize,
    dim: usize,
}

impl LayerNorm {
    /// LayerNorm with `bias`, RMSNorm without.
    pub fn new(
        g: &GraphBuilder,
        x: Var,
        weight: Var,
        bias: Option<Var>,
        eps: f32,
    ) -> Result<(Self, Vec<usize>)> {
        let (op, params) = match bias {
            Some(b) => ("layer_norm", vec![weight, b]),
            None => ("rms_norm", vec![weight]),
        };
        let (rows, dim) = norm_rows(g, op, x, &params, eps)?;
        Ok((
            Self {
                x,
                weight,
                bias,
                eps,
                rows,
                dim,
            },
            g.shape(x).to_vec(),
        ))
    }

    fn params(&self, x: Option<GradMode>, w: Option<GradMode>, b: Option<GradMode>) -> LnParams {
        let flag = |m: Option<GradMode>| m.map_or(0, GradMode::flag);
        LnParams {
            rows: self.rows as u32,
            dim: self.dim as u32,
            eps: self.eps,
            accumulate_x: flag(x),
            accumulate_weight: flag(w),
            accumulate_bias: flag(b),
            ..Default::default()
        }
    }

    /// The forward and input-gradient kernels of this norm.
    fn row_kernels(&self) -> (Kernel, Kernel) {
        match self.bias {
            Some(_) => (Kernel::LayerNormForward, Kernel::LayerNormBackwardInput),
            None => (Kernel::RmsNormForward, Kernel::RmsNormBackwardInput),
        }
    }

    /// The weight and bias gradients (one kernel writes both: a gradient nobody wants,
    /// RMSNorm's absent bias included, goes to scratch), when either is wanted.
    fn param_grads(
        &self,
        cx: &mut CompileCx<'_>,
        modes: Modes<'_>,
        [x, stats, dy]: [&Tensor; 3],
    ) -> Result<Option<Dispatch>> {
        let want_w = wanted(cx, self.weight, modes[1]).is_some();
        let want_b = self.bias.is_some_and(|b| wanted(cx, b, modes[2]).is_some());
        if !want_w && !want_b {
            return Ok(None);
        }
        let spare = match want_w && want_b {
            true => None,
            false => Some(cx.scratch(&[self.dim], "coptim layernorm spare grad")?),
        };
        let (dw, dw_mode) = wanted(cx, self.weight, modes[1]).unzip();
        let (db, db_mode) = self.bias.and_then(|b| wanted(cx, b, modes[2])).unzip();
        let dw = dw.or(spare.as_ref()).expect("one of the two is present");
        let db = db.or(spare.as_ref()).expect("one of the two is present");
        Ok(Some(cx.launch(
            Kernel::LayerNormBackwardParams,
            &self.params(None, dw_mode, db_mode),
            &[(X, x), (STATS, stats), (DY, dy), (DWEIGHT, dw), (DBIAS, db)],
            self.dim,
        )))
    }
}

impl Op for LayerNorm {
    fn inputs(&self) -> Vec<Var> {
        [self.x, self.weight].into_iter().chain(self.bias).collect()
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let stats = cx.scratch(&[self.rows, 2], "coptim layernorm stats")?;
        let (x, w, y) = (
            cx.value(self.x).clone(),
            cx.value(self.weight).clone(),
            cx.value(out).clone(),
        );
        let bias = self.bias.map(|b| cx.value(b).clone());
        let (forward, backward_input) = self.row_kernels();
        let mut tensors = vec![(X, &x), (WEIGHT, &w), (Y, &y), (STATS, &stats)];
        tensors.extend(bias.as_ref().map(|b| (BIAS, b)));
        let params = self.params(None, None, None);
        let mut compiled = Compiled::forward(cx.launch(forward, &params, &tensors, self.rows));
        let Some(dy) = cx.out_grad(out) else {
            return Ok(compiled);
        };
        if let Some((dx, mode)) = wanted(cx, self.x, modes[0]) {
            compiled.backward.push(cx.launch(
                backward_input,
                &self.params(Some(mode), None, None),
                &[(X, &x), (WEIGHT, &w), (STATS, &stats), (DY, &dy), (DX, dx)],
                self.rows,
            ));
        }
        compiled
            .backward
            .extend(self.param_grads(cx, modes, [&x, &stats, &dy])?);
        Ok(compiled)
    }
}
