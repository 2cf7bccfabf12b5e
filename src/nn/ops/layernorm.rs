//! LayerNorm over the last dimension.

use crate::error::{Error, Result};
use crate::nn::bindings::{
    BIAS, DBIAS, DWEIGHT, DX, DY, Family, STATS, WEIGHT, X, Y, uniform_block,
};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op, wanted};
use crate::nn::tensor::{DType, numel};

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

/// `(x - mean) / sqrt(var + eps) * weight + bias` per row.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    x: Var,
    weight: Var,
    bias: Var,
    eps: f32,
    rows: usize,
    dim: usize,
}

impl LayerNorm {
    pub fn new(
        g: &GraphBuilder,
        x: Var,
        weight: Var,
        bias: Var,
        eps: f32,
    ) -> Result<(Self, Vec<usize>)> {
        let sx = g.shape(x);
        let dim = *sx.last().unwrap_or(&0);
        if [x, weight, bias].iter().any(|&v| g.dtype(v) != DType::F32)
            || g.shape(weight) != [dim]
            || g.shape(bias) != [dim]
        {
            return Err(Error::shape(
                "layer_norm",
                format!(
                    "input {sx:?} needs f32 weight and bias of shape [{dim}], got {:?} and {:?}",
                    g.shape(weight),
                    g.shape(bias)
                ),
            ));
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(Error::InvalidConfig(format!(
                "layer_norm eps {eps} must be positive"
            )));
        }
        Ok((
            Self {
                x,
                weight,
                bias,
                eps,
                rows: numel(sx) / dim,
                dim,
            },
            sx.to_vec(),
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
}

impl Op for LayerNorm {
    fn inputs(&self) -> Vec<Var> {
        vec![self.x, self.weight, self.bias]
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let stats = cx.scratch(&[self.rows, 2], "coptim layernorm stats")?;
        let (x, w, b, y) = (
            cx.value(self.x).clone(),
            cx.value(self.weight).clone(),
            cx.value(self.bias).clone(),
            cx.value(out).clone(),
        );
        let mut compiled = Compiled::forward(cx.launch(
            Kernel::LayerNormForward,
            &self.params(None, None, None),
            &[(X, &x), (WEIGHT, &w), (BIAS, &b), (Y, &y), (STATS, &stats)],
            self.rows,
        ));
        let Some(dy) = cx.out_grad(out) else {
            return Ok(compiled);
        };
        if let Some((dx, mode)) = wanted(cx, self.x, modes[0]) {
            compiled.backward.push(cx.launch(
                Kernel::LayerNormBackwardInput,
                &self.params(Some(mode), None, None),
                &[(X, &x), (WEIGHT, &w), (STATS, &stats), (DY, &dy), (DX, dx)],
                self.rows,
            ));
        }
        let want_w = wanted(cx, self.weight, modes[1]).is_some();
        let want_b = wanted(cx, self.bias, modes[2]).is_some();
        if !want_w && !want_b {
            return Ok(compiled);
        }
        // The kernel writes both; a gradient nobody wants goes to scratch.
        let spare = match want_w && want_b {
            true => None,
            false => Some(cx.scratch(&[self.dim], "coptim layernorm spare grad")?),
        };
        let (dw, dw_mode) = wanted(cx, self.weight, modes[1]).unzip();
        let (db, db_mode) = wanted(cx, self.bias, modes[2]).unzip();
        let dw = dw.or(spare.as_ref()).expect("one of the two is present");
        let db = db.or(spare.as_ref()).expect("one of the two is present");
        compiled.backward.push(cx.launch(
            Kernel::LayerNormBackwardParams,
            &self.params(None, dw_mode, db_mode),
            &[
                (X, &x),
                (STATS, &stats),
                (DY, &dy),
                (DWEIGHT, dw),
                (DBIAS, db),
            ],
            self.dim,
        ));
        Ok(compiled)
    }
}
