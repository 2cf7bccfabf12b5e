//! Token embedding: [`Embedding`] gathers rows of a table `[vocab, dim]` by `u32` ids;
//! its backward pass scatter-adds the upstream gradient into the table's gradient,
//! deterministically and without float atomics (`nn_embedding.wgsl`).
//!
//! Backward cost: building the per-row token lists reads the ids once per table row,
//! `vocab * tokens` reads in `vocab` invocations (73 x 4096 for a character-level
//! model: well under a millisecond); the sums then read each upstream gradient entry
//! once, `tokens * dim`. The lists take `2 * vocab + tokens` u32s. So it suits the
//! small vocabularies of character- or byte-level models; a vocabulary of tens of
//! thousands makes the list building (one serial scan of all tokens per row) the
//! bottleneck, and would want a parallel sort of the ids instead.

use crate::error::Result;
use crate::nn::bindings::{DWEIGHT, DY, Family, IDS, OUT, TOKEN_INDEX, WEIGHT, uniform_block};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, Modes, Op, reject_shape};
use crate::nn::tensor::{DType, numel};

uniform_block! {
    /// The uniform block of `nn_embedding.wgsl`.
    struct EmbParams {
        /// Ids (N).
        tokens: u32,
        /// Table rows (V).
        vocab: u32,
        /// Features per row (D).
        dim: u32,
        /// [`GradMode::flag`](crate::nn::ops::GradMode::flag) of the table's gradient.
        accumulate: u32,
    }
}

/// The bindings of `nn_embedding.wgsl`.
pub(crate) const EMBEDDING: Family =
    Family::new::<EmbParams>(&[WEIGHT, IDS, OUT, DY, TOKEN_INDEX, DWEIGHT]);

/// `table [vocab, dim]` and `ids [...]` (u32) to `[..., dim]`.
#[derive(Debug)]
pub(crate) struct Embedding {
    table: Var,
    ids: Var,
    tokens: usize,
    vocab: usize,
    dim: usize,
}

impl Embedding {
    /// Checks that the table is f32 `[vocab, dim]` and the ids u32.
    pub fn new(g: &GraphBuilder, table: Var, ids: Var) -> Result<(Self, Vec<usize>)> {
        let (st, si) = (g.shape(table), g.shape(ids));
        reject_shape(
            g.dtype(table) != DType::F32 || g.dtype(ids) != DType::U32 || st.len() != 2,
            "embedding",
            || format!("table {st:?} must be f32 [vocab, dim] and ids {si:?} u32"),
        )?;
        let mut shape = si.to_vec();
        shape.push(st[1]);
        let op = Self {
            table,
            ids,
            tokens: numel(si),
            vocab: st[0],
            dim: st[1],
        };
        Ok((op, shape))
    }

    fn params(&self, accumulate: u32) -> EmbParams {
        EmbParams {
            tokens: self.tokens as u32,
            vocab: self.vocab as u32,
            dim: self.dim as u32,
            accumulate,
        }
    }
}

impl Op for Embedding {
    fn inputs(&self) -> Vec<Var> {
        vec![self.table, self.ids]
    }

    fn differentiable(&self, slot: usize) -> bool {
        slot == 0
    }

    fn id_bound(&self, slot: usize) -> Option<usize> {
        (slot == 1).then_some(self.vocab)
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let (table, ids) = (cx.value(self.table).clone(), cx.value(self.ids).clone());
        let mut compiled = Compiled::forward(cx.launch(
            Kernel::EmbeddingForward,
            &self.params(0),
            &[(WEIGHT, &table), (IDS, &ids), (OUT, cx.value(out))],
            self.tokens * self.dim,
        ));
        let Some((dy, dtable, mode)) = cx.backward(out, self.table, modes[0]) else {
            return Ok(compiled);
        };
        let dtable = dtable.clone();
        let index = cx.scratch_u32(2 * self.vocab + self.tokens, "coptim embedding token lists")?;
        compiled.backward = vec![
            cx.launch(
                Kernel::EmbeddingIndex,
                &self.params(0),
                &[(IDS, &ids), (TOKEN_INDEX, &index)],
                self.vocab,
            ),
            cx.launch(
                Kernel::EmbeddingBackward,
                &self.params(mode.flag()),
                &[(DY, &dy), (TOKEN_INDEX, &index), (DWEIGHT, &dtable)],
                self.vocab * self.dim,
            ),
        ];
        Ok(compiled)
    }
}
