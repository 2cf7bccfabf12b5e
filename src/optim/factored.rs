//! Adafactor's factored view of a tensor: which two dimensions its second moment is
//! factored over (the rules of timm, big_vision and C-Optim differ), and the index
//! arithmetic of the two mean vectors it keeps instead of a full second moment.
//!
//! A tensor factored over dimensions `p < q` is viewed as
//! `[outer, n_p, mid, n_q, inner]` (row-major, `outer`, `mid` and `inner` the products
//! of the dimensions before, between and after them). Its means over `q` have shape
//! `[outer, n_p, mid, inner]` and its means over `p` shape `[outer, mid, n_q, inner]`,
//! both row-major, as torch's `mean(dim)` (without `keepdim`) lays them out.

use serde::{Deserialize, Serialize};

/// How a member picks the two dimensions to factor, or none (then it keeps the full
/// second moment, as for vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Factoring {
    /// timm `Adafactor._get_options` (timm/optim/adafactor.py): dimensions 0 and 1
    /// of a tensor of rank > 2 when both exceed `min_dim_size` (convolutions), else
    /// the last two when both exceed it.
    Timm {
        /// `min_dim_size_to_factor` (timm: 16).
        min_dim_size: usize,
    },
    /// The two largest dimensions (of equal sizes the later counts as larger), when
    /// the smaller is at least `min_dim_size`: big_vision's rule (timm `_factored_dims`,
    /// timm/optim/adafactor_bv.py).
    LargestTwo {
        /// `min_dim_size_to_factor` (timm: 16).
        min_dim_size: usize,
    },
    /// The last two dimensions of every tensor of rank >= 2 (fairseq, Hugging Face
    /// and C-Optim's c_adafactor.py).
    LastTwo,
}

/// The dimensions a factored second moment reduces: the row means average over
/// `row_reduces` and the column means over `col_reduces` (timm's `dim_row` and
/// `dim_col`; big_vision's `dr` and `dc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactoredDims {
    /// The dimension the row means average over.
    pub row_reduces: usize,
    /// The dimension the column means average over.
    pub col_reduces: usize,
}

impl Factoring {
    /// The dimensions to factor a tensor of `shape` over, or `None` to keep its full
    /// second moment.
    pub fn dims(self, shape: &[usize]) -> Option<FactoredDims> {
        let rank = shape.len();
        if rank < 2 {
            return None;
        }
        let (col, row) = match self {
            Factoring::Timm { min_dim_size } => {
                let large = |d: usize| shape[d] > min_dim_size;
                if rank > 2 && large(0) && large(1) {
                    (0, 1)
                } else if large(rank - 2) && large(rank - 1) {
                    (rank - 2, rank - 1)
                } else {
                    return None;
                }
            }
            Factoring::LargestTwo { min_dim_size } => {
                let mut sorted: Vec<(usize, usize)> =
                    shape.iter().enumerate().map(|(i, &n)| (n, i)).collect();
                sorted.sort_unstable();
                let (second, largest) = (sorted[rank - 2], sorted[rank - 1]);
                if second.0 < min_dim_size {
                    return None;
                }
                (second.1, largest.1)
            }
            Factoring::LastTwo => (rank - 2, rank - 1),
        };
        Some(FactoredDims {
            row_reduces: row,
            col_reduces: col,
        })
    }
}

/// A tensor's `[outer, n_p, mid, n_q, inner]` view for two dimensions `p < q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisView {
    /// Product of the dimensions before `p`.
    pub outer: usize,
    /// Size of dimension `p`.
    pub n_p: usize,
    /// Product of the dimensions between `p` and `q`.
    pub mid: usize,
    /// Size of dimension `q`.
    pub n_q: usize,
    /// Product of the dimensions after `q`.
    pub inner: usize,
}

impl AxisView {
    /// The view of `shape` for dimensions `a` and `b` (in either order, distinct).
    pub fn new(shape: &[usize], a: usize, b: usize) -> Self {
        assert!(a != b && a.max(b) < shape.len(), "two distinct dimensions");
        let (p, q) = (a.min(b), a.max(b));
        let prod = |dims: &[usize]| dims.iter().product::<usize>();
        Self {
            outer: prod(&shape[..p]),
            n_p: shape[p],
            mid: prod(&shape[p + 1..q]),
            n_q: shape[q],
            inner: prod(&shape[q + 1..]),
        }
    }

    /// Elements of the tensor.
    pub fn numel(&self) -> usize {
        self.outer * self.n_p * self.mid * self.n_q * self.inner
    }

    /// Elements of the means over `q`.
    pub fn q_means_len(&self) -> usize {
        self.numel() / self.n_q
    }

    /// Elements of the means over `p`.
    pub fn p_means_len(&self) -> usize {
        self.numel() / self.n_p
    }

    /// The index of element `e` in the means over `q` (its `q` coordinate dropped).
    pub fn q_mean_index(&self, e: usize) -> usize {
        let after_q = self.inner;
        (e / (self.n_q * after_q)) * after_q + e % after_q
    }

    /// The index of element `e` in the means over `p` (its `p` coordinate dropped).
    pub fn p_mean_index(&self, e: usize) -> usize {
        let after_p = self.mid * self.n_q * self.inner;
        (e / (self.n_p * after_p)) * after_p + e % after_p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMM: Factoring = Factoring::Timm { min_dim_size: 16 };
    const BV: Factoring = Factoring::LargestTwo { min_dim_size: 16 };

    fn dims(f: Factoring, shape: &[usize]) -> Option<(usize, usize)> {
        f.dims(shape).map(|d| (d.col_reduces, d.row_reduces))
    }

    #[test]
    fn the_rules_pick_the_dimensions_their_references_pick() {
        // timm: conv weights factor over (0, 1); small trailing dims do not factor.
        assert_eq!(dims(TIMM, &[32, 24, 3, 3]), Some((0, 1)));
        assert_eq!(dims(TIMM, &[4, 32, 24]), Some((1, 2)));
        assert_eq!(dims(TIMM, &[32, 16]), None);
        assert_eq!(dims(TIMM, &[64]), None);
        // big_vision: the two largest, in size order (the larger reduces the rows).
        assert_eq!(dims(BV, &[64, 32]), Some((1, 0)));
        assert_eq!(dims(BV, &[32, 32]), Some((0, 1)));
        assert_eq!(dims(BV, &[3, 40, 20]), Some((2, 1)));
        assert_eq!(dims(BV, &[15, 40]), None);
        // C-Optim: always the last two.
        assert_eq!(dims(Factoring::LastTwo, &[1, 5]), Some((0, 1)));
        assert_eq!(dims(Factoring::LastTwo, &[7]), None);
    }

    #[test]
    fn mean_indices_drop_one_coordinate() {
        let v = AxisView::new(&[2, 3, 4, 5], 3, 1);
        assert_eq!((v.outer, v.n_p, v.mid, v.n_q, v.inner), (2, 3, 4, 5, 1));
        // Element (o, p, m, q) = (1, 2, 3, 4) is 1*60 + 2*20 + 3*5 + 4 = 119.
        let (o, p, m, q) = (1, 2, 3, 4);
        assert_eq!(v.q_mean_index(119), (o * 3 + p) * 4 + m);
        assert_eq!(v.p_mean_index(119), (o * 4 + m) * 5 + q);
        assert_eq!((v.q_means_len(), v.p_means_len()), (24, 40));
    }
}
