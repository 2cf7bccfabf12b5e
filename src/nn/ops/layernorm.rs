//! LayerNorm over the last dimension.

use crate::error::{Error, Result};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::kernels::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, wanted};
use crate::nn::tensor::{DType, numel};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LnParams {
    rows: u32,
    dim: u32,
    eps: f32,
    accumulate_x: u32,
    accumulate_weight: u32,
    accumulate_bias: u32,
    pad: [u32; 2],
}

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
            pad: [0; 2],
        }
    }
}

impl Op for LayerNorm {
    fn inputs(&self) -> Vec<Var> {
        vec![self.x, self.weight, self.bias]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let stats = cx.scratch(&[self.rows, 2], "coptim layernorm stats")?;
        let (x, w, b, y) = (
            cx.value(self.x).clone(),
            cx.value(self.weight).clone(),
            cx.value(self.bias).clone(),
            cx.value(out).clone(),
        );
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::LayerNormForward,
            &self.params(None, None, None),
            &[(1, &x), (2, &w), (3, &b), (4, &y), (5, &stats)],
            cx.row_grid(self.rows),
        ));
        let Some(dy) = cx.out_grad(out) else {
            return Ok(compiled);
        };
        if let Some((dx, mode)) = wanted(cx, self.x, modes[0]) {
            compiled.backward.push(cx.dispatch(
                Kernel::LayerNormBackwardInput,
                &self.params(Some(mode), None, None),
                &[(1, &x), (2, &w), (5, &stats), (6, &dy), (7, dx)],
                cx.row_grid(self.rows),
            ));
        }
        let want_w = wanted(cx, self.weight, modes[1]).is_some();
        let want_b = wanted(cx, self.bias, modes[2]).is_some();
        // The kernel writes both; a gradient nobody wants goes to scratch.
        let spare = if want_w != want_b {
            Some(cx.scratch(&[self.dim], "coptim layernorm spare grad")?)
        } else {
            None
        };
        let dw = wanted(cx, self.weight, modes[1]);
        let db = wanted(cx, self.bias, modes[2]);
        if want_w || want_b {
            let (dw, dw_mode) = dw.unzip();
            let (db, db_mode) = db.unzip();
            let dw = dw.or(spare.as_ref()).expect("one of the two is present");
            let db = db.or(spare.as_ref()).expect("one of the two is present");
            compiled.backward.push(cx.dispatch(
                Kernel::LayerNormBackwardParams,
                &self.params(None, dw_mode, db_mode),
                &[(1, &x), (5, &stats), (6, &dy), (8, dw), (9, db)],
                cx.row_grid(self.dim),
            ));
        }
        Ok(compiled)
    }
}

/// The layout of [`LnParams`], for the test against naga's layout of the WGSL struct.
#[cfg(test)]
pub(super) fn mirror() -> crate::wgsl::MirrorLayout {
    crate::wgsl::mirror_layout!(
        LnParams,
        "LnParams",
        [
            rows,
            dim,
            eps,
            accumulate_x,
            accumulate_weight,
            accumulate_bias
        ]
    )
}
