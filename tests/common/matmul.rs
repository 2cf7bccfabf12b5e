//! The matmul cases the nn tests share: `op(A) @ op(B)` at a shape, optionally
//! batched, with A and/or B stored transposed, and its f64 reference (output and
//! gradients in the operands' stored layouts).

use coptim::nn::reference as r;

/// Every combination of (A stored transposed, B stored transposed).
pub const TRANSPOSES: [(bool, bool); 4] =
    [(false, false), (true, false), (false, true), (true, true)];

/// One matmul case: `op(A)` is `m x k`, `op(B)` is `k x n`, over `batch` matrices
/// (`None`: unbatched 2-D operands).
#[derive(Debug, Clone, Copy)]
pub struct MatmulCase {
    /// Rows of the output.
    pub m: usize,
    /// The contracted dimension.
    pub k: usize,
    /// Columns of the output.
    pub n: usize,
    /// Matrices in a batched case (a leading dimension of both operands).
    pub batch: Option<usize>,
    /// A is stored `k x m`.
    pub ta: bool,
    /// B is stored `n x k`.
    pub tb: bool,
}

impl MatmulCase {
    /// Every case over `sizes` (m, k, n): unbatched and batched by 3, each transpose.
    pub fn all(sizes: &[(usize, usize, usize)]) -> Vec<Self> {
        let mut cases = Vec::new();
        for &(m, k, n) in sizes {
            for batch in [None, Some(3)] {
                for (ta, tb) in TRANSPOSES {
                    cases.push(Self {
                        m,
                        k,
                        n,
                        batch,
                        ta,
                        tb,
                    });
                }
            }
        }
        cases
    }

    /// How the case names itself in failures.
    pub fn name(&self) -> String {
        let Self {
            m,
            k,
            n,
            batch,
            ta,
            tb,
        } = self;
        format!("matmul {m}x{k}x{n} batch {batch:?} ta {ta} tb {tb}")
    }

    /// Matrices in the batch (1 when unbatched).
    pub fn matrices(&self) -> usize {
        self.batch.unwrap_or(1)
    }

    /// The stored shapes of A and B.
    pub fn operand_shapes(&self) -> [Vec<usize>; 2] {
        let Self {
            m,
            k,
            n,
            batch,
            ta,
            tb,
        } = *self;
        let lead: Vec<usize> = batch.into_iter().collect();
        [
            [&lead[..], &if ta { [k, m] } else { [m, k] }].concat(),
            [&lead[..], &if tb { [n, k] } else { [k, n] }].concat(),
        ]
    }

    /// Matrix `bi` of A and of B in their logical (untransposed) layouts.
    fn logical(&self, a: &[f64], b: &[f64], bi: usize) -> (Vec<f64>, Vec<f64>) {
        let Self {
            m, k, n, ta, tb, ..
        } = *self;
        (
            stored_to_logical(&a[bi * m * k..(bi + 1) * m * k], m, k, ta),
            stored_to_logical(&b[bi * k * n..(bi + 1) * k * n], k, n, tb),
        )
    }

    /// The output `op(A) @ op(B)`, batch after batch.
    pub fn forward(&self, a: &[f64], b: &[f64]) -> Vec<f64> {
        let Self { m, k, n, .. } = *self;
        (0..self.matrices())
            .flat_map(|bi| {
                let (a, b) = self.logical(a, b, bi);
                r::matmul(&a, &b, m, k, n)
            })
            .collect()
    }

    /// The gradients of A and B (stored layouts) for the upstream gradient `dy`.
    pub fn backward(&self, a: &[f64], b: &[f64], dy: &[f64]) -> [Vec<f64>; 2] {
        let Self {
            m, k, n, ta, tb, ..
        } = *self;
        let (mut da, mut db) = (Vec::new(), Vec::new());
        for bi in 0..self.matrices() {
            let (a, b) = self.logical(a, b, bi);
            let d = &dy[bi * m * n..(bi + 1) * m * n];
            let ga = r::matmul(d, &r::transpose(&b, k, n), m, n, k);
            let gb = r::matmul(&r::transpose(&a, m, k), d, k, m, n);
            da.extend(stored_to_logical(&ga, k, m, ta));
            db.extend(stored_to_logical(&gb, n, k, tb));
        }
        [da, db]
    }
}

/// A `rows x cols` matrix from its storage: as is, or stored transposed (`cols x rows`).
/// Applied to a logical gradient with the dimensions swapped, it gives the stored one.
fn stored_to_logical(x: &[f64], rows: usize, cols: usize, transposed: bool) -> Vec<f64> {
    if transposed {
        r::transpose(x, cols, rows)
    } else {
        x.to_vec()
    }
}
