//! A masked autoencoder's loss ([`MaskedMse`]): the mean squared error per patch,
//! averaged over the masked patches only, optionally against per-patch normalized
//! targets (MAE's `norm_pix_loss`). Kernels in `nn_loss.wgsl`.

use crate::error::{Error, Result};
use crate::nn::bindings::{DLOSS, DX, MASK, OUT, ROWS, TARGET, X};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::loss::LossParams;
use crate::nn::ops::{CompileCx, Compiled, Modes, Op, reject_shape};
use crate::nn::tensor::DType;

/// The per-row scratch entries of `nn_loss.wgsl` (`MSE_STRIDE`), plus one for the
/// mask's sum.
const MSE_STRIDE: usize = 4;

/// `pred [..., P]`, `target [..., P]` and `mask [...]` (f32) to the `[1]` loss.
#[derive(Debug)]
pub(crate) struct MaskedMse {
    pred: Var,
    target: Var,
    mask: Var,
    params: LossParams,
}

impl MaskedMse {
    /// Checks that `pred` and `target` are f32 of one shape `[..., P]` and `mask` f32
    /// of its leading shape; a normalized target needs `P >= 2` (its unbiased
    /// variance divides by `P - 1`).
    pub fn new(
        g: &GraphBuilder,
        (pred, target, mask): (Var, Var, Var),
        norm_target: bool,
    ) -> Result<(Self, Vec<usize>)> {
        let (sp, st, sm) = (g.shape(pred), g.shape(target), g.shape(mask));
        let f32s = [pred, target, mask]
            .iter()
            .all(|&v| g.dtype(v) == DType::F32);
        let Some((&features, leading)) = sp.split_last().filter(|_| f32s && sp == st) else {
            return Err(Error::shape(
                "masked_mse",
                format!("pred {sp:?} and target {st:?} must be f32 of one shape [..., patch]"),
            ));
        };
        reject_shape(
            sm != leading || features < 1 + norm_target as usize,
            "masked_mse",
            || {
                format!(
                    "mask {sm:?} must be f32 {leading:?}, and patches of {features} \
                     values need at least 2 to be normalized"
                )
            },
        )?;
        let params = LossParams {
            norm_target: norm_target as u32,
            ..LossParams::new(leading.iter().product(), features)
        };
        let op = Self {
            pred,
            target,
            mask,
            params,
        };
        Ok((op, vec![1]))
    }
}

impl Op for MaskedMse {
    fn inputs(&self) -> Vec<Var> {
        vec![self.pred, self.target, self.mask]
    }

    fn differentiable(&self, slot: usize) -> bool {
        slot == 0
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let rows = self.params.rows as usize;
        let scratch = cx.scratch(&[rows * MSE_STRIDE + 1], "coptim masked MSE rows")?;
        let (pred, target) = (cx.value(self.pred), cx.value(self.target));
        let p = self.params;
        let forward = vec![
            cx.launch(
                Kernel::MseForwardRows,
                &p,
                &[
                    (X, pred),
                    (TARGET, target),
                    (MASK, cx.value(self.mask)),
                    (ROWS, &scratch),
                ],
                rows,
            ),
            cx.launch(
                Kernel::ReduceRatio,
                &p,
                &[(ROWS, &scratch), (OUT, cx.value(out))],
                1,
            ),
        ];
        let mut compiled = Compiled {
            forward,
            backward: Vec::new(),
        };
        if let Some((dloss, dx, mode)) = cx.backward(out, self.pred, modes[0]) {
            let p = LossParams {
                accumulate: mode.flag(),
                ..p
            };
            compiled.backward.push(cx.launch(
                Kernel::MseBackward,
                &p,
                &[
                    (X, pred),
                    (TARGET, target),
                    (ROWS, &scratch),
                    (DLOSS, &dloss),
                    (DX, dx),
                ],
                dx.len(),
            ));
        }
        Ok(compiled)
    }
}
