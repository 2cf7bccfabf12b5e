//! Per-sample token gathers of a masked autoencoder ([`GatherTokens`]): keeping the
//! visible tokens by `ids_keep`, and unshuffling the encoded tokens back to patch
//! order with a learned mask token at the removed positions (`ids_restore`). Kernels
//! in `nn_tokens.wgsl`; both backward passes are deterministic (no atomics).

use crate::error::Result;
use crate::nn::bindings::{DY, IDS, OTHER, OUT, X};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::check_f32;
use crate::nn::ops::tokens::TokParams;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op, reject_shape};
use crate::nn::tensor::{DType, numel};

/// `x [B, S, D]` gathered by `ids [B, T]` (u32) into `[B, T, D]`; with a fill token
/// `[D]`, ids at or above `S` take the fill token (the unshuffle).
#[derive(Debug)]
pub(crate) struct GatherTokens {
    x: Var,
    ids: Var,
    fill: Option<Var>,
    params: TokParams,
}

/// Input slots: the source tokens, the ids, the fill token.
const X_SLOT: usize = 0;
const IDS_SLOT: usize = 1;
const FILL_SLOT: usize = 2;

impl GatherTokens {
    /// Checks `x` f32 `[B, S, D]`, `ids` u32 `[B, T]` and the fill token `[D]` (or
    /// `[1, 1, D]`); `op` names the graph method in errors.
    pub fn new(
        g: &GraphBuilder,
        op: &str,
        (x, ids, fill): (Var, Var, Option<Var>),
    ) -> Result<(Self, Vec<usize>)> {
        check_f32(g, op, &[x])?;
        let (sx, si) = (g.shape(x), g.shape(ids));
        reject_shape(
            sx.len() != 3 || g.dtype(ids) != DType::U32 || si.len() != 2 || si[0] != sx[0],
            op,
            || format!("tokens {sx:?} (f32 [batch, n, dim]) and ids {si:?} (u32 [batch, m])"),
        )?;
        if let Some(f) = fill {
            check_f32(g, op, &[f])?;
            let sf = g.shape(f);
            reject_shape(sf.last() != Some(&sx[2]) || numel(sf) != sx[2], op, || {
                format!("mask token {sf:?} does not fit tokens {sx:?} (needs [dim])")
            })?;
        }
        let params = TokParams {
            batch: sx[0] as u32,
            tokens: si[1] as u32,
            dim: sx[2] as u32,
            sources: sx[1] as u32,
            ..Default::default()
        };
        let op = Self {
            x,
            ids,
            fill,
            params,
        };
        Ok((op, vec![sx[0], si[1], sx[2]]))
    }

    /// The block of a launch over `len` invocations writing with `mode`.
    fn params(&self, len: usize, mode: GradMode) -> TokParams {
        TokParams {
            len: len as u32,
            accumulate: mode.flag(),
            ..self.params
        }
    }
}

impl Op for GatherTokens {
    fn inputs(&self) -> Vec<Var> {
        let mut inputs = vec![self.x, self.ids];
        inputs.extend(self.fill);
        inputs
    }

    fn differentiable(&self, slot: usize) -> bool {
        slot != IDS_SLOT
    }

    /// A gather's ids index the source tokens; the unshuffle's run over the output
    /// tokens (those at or above the source count take the fill token).
    fn id_bound(&self, slot: usize) -> Option<usize> {
        let bound = match self.fill {
            Some(_) => self.params.tokens,
            None => self.params.sources,
        };
        (slot == IDS_SLOT).then_some(bound as usize)
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let (x, ids, y) = (cx.value(self.x), cx.value(self.ids), cx.value(out));
        let forward = match self.fill {
            Some(f) => cx.launch(
                Kernel::UnshuffleForward,
                &self.params(y.len(), GradMode::Overwrite),
                &[(X, x), (OTHER, cx.value(f)), (IDS, ids), (OUT, y)],
                y.len(),
            ),
            None => cx.launch(
                Kernel::GatherTokensForward,
                &self.params(y.len(), GradMode::Overwrite),
                &[(X, x), (IDS, ids), (OUT, y)],
                y.len(),
            ),
        };
        let mut compiled = Compiled::forward(forward);
        if let Some((dy, dx, mode)) = cx.backward(out, self.x, modes[X_SLOT]) {
            compiled.backward.push(cx.launch(
                Kernel::GatherTokensBackward,
                &self.params(dx.len(), mode),
                &[(IDS, ids), (DY, &dy), (OUT, dx)],
                dx.len(),
            ));
        }
        let fill_grad = self
            .fill
            .and_then(|f| cx.backward(out, f, modes[FILL_SLOT]));
        if let Some((dy, dfill, mode)) = fill_grad {
            compiled.backward.push(cx.launch(
                Kernel::UnshuffleBackwardFill,
                &self.params(dfill.len(), mode),
                &[(IDS, ids), (DY, &dy), (OUT, dfill)],
                dfill.len(),
            ));
        }
        Ok(compiled)
    }
}
