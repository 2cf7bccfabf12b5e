//! The f64 Muon step, written to read like timm's `_single_tensor_muon` (and C-Optim's
//! `muon_update` for the caution mask); the GPU step is tested against it.

use crate::error::{Error, Result};
use crate::nn::reference::{matmul, transpose};
use crate::optim::config::Caution;
use crate::optim::muon::{Muon, muon_matrix};
use crate::optim::reference::ReferenceOptimizer;

/// Newton-Schulz orthogonalization of the row-major `rows x cols` matrix `g` in f64:
/// transposed when `rows > cols`, divided by its Frobenius norm clamped at `eps`, then
/// `X = a X + (b A + c A A) X` with `A = X X^T` for each `(a, b, c)` of `coefficients`.
pub fn newton_schulz(
    g: &[f64],
    rows: usize,
    cols: usize,
    coefficients: &[[f64; 3]],
    eps: f64,
) -> Vec<f64> {
    let transposed = rows > cols;
    let (r, c) = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let mut x = if transposed {
        transpose(g, rows, cols)
    } else {
        g.to_vec()
    };
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(eps);
    x.iter_mut().for_each(|v| *v /= norm);
    for &[a, b, cc] in coefficients {
        let gram = matmul(&x, &transpose(&x, r, c), r, c, r);
        let square = matmul(&gram, &gram, r, r, r);
        let poly: Vec<f64> = gram
            .iter()
            .zip(&square)
            .map(|(g, s)| b * g + cc * s)
            .collect();
        let bx = matmul(&poly, &x, r, r, c);
        x = x.iter().zip(&bx).map(|(xv, bv)| a * xv + bv).collect();
    }
    if transposed { transpose(&x, r, c) } else { x }
}

/// An f64 Muon (or C-Muon) over tensors of given shapes, at a constant learning rate.
#[derive(Debug, Clone)]
pub struct MuonReference {
    muon: Muon,
    caution: Caution,
    lr: f64,
    weight_decay: f64,
    /// Each tensor's Muon matrix `(rows, cols)`, `None` for a fallback tensor.
    matrices: Vec<Option<(usize, usize)>>,
    /// The momentum buffer of each Muon tensor (empty for fallback tensors).
    pub momentum: Vec<Vec<f64>>,
    /// The AdamW (NAdamW) of the fallback tensors, in tensor order.
    fallback: ReferenceOptimizer,
}

impl MuonReference {
    /// A reference for tensors of `shapes` (all in one group: weight decay
    /// `weight_decay`, rate `lr`; the fallback at `lr * fallback_lr_scale`).
    pub fn new(
        muon: Muon,
        caution: Caution,
        lr: f64,
        weight_decay: f64,
        shapes: &[Vec<usize>],
    ) -> Result<Self> {
        muon.validate()?;
        let matrices: Vec<_> = shapes.iter().map(|s| muon_matrix(s)).collect();
        let fallback_shapes: Vec<(String, Vec<usize>)> = shapes
            .iter()
            .zip(&matrices)
            .enumerate()
            .filter(|(_, (_, m))| m.is_none())
            .map(|(i, (s, _))| (format!("t{i}"), s.clone()))
            .collect();
        let fallback = ReferenceOptimizer::with_shapes(
            muon.fallback(lr, weight_decay, caution),
            &fallback_shapes,
        )?;
        let momentum = shapes
            .iter()
            .zip(&matrices)
            .map(|(s, m)| vec![0.0; if m.is_some() { s.iter().product() } else { 0 }])
            .collect();
        Ok(Self {
            muon,
            caution,
            lr,
            weight_decay,
            matrices,
            momentum,
            fallback,
        })
    }

    /// Whether tensor `i` is orthogonalized (otherwise it takes the fallback step).
    pub fn is_matrix(&self, i: usize) -> bool {
        self.matrices[i].is_some()
    }

    /// One step: updates `params` in place from `grads`.
    pub fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>]) -> Result<()> {
        if params.len() != self.matrices.len() || grads.len() != self.matrices.len() {
            return Err(Error::LengthMismatch {
                what: "muon reference tensors".into(),
                expected: self.matrices.len() as u64,
                got: params.len().min(grads.len()) as u64,
            });
        }
        let mut fb_params = Vec::new();
        let mut fb_grads = Vec::new();
        for (i, p) in params.iter_mut().enumerate() {
            match self.matrices[i] {
                Some(dims) => self.matrix_step(i, dims, p, &grads[i]),
                None => {
                    fb_params.push(std::mem::take(p));
                    fb_grads.push(grads[i].clone());
                }
            }
        }
        self.fallback.step(&mut fb_params, &fb_grads)?;
        let fallback_slots = (0..params.len()).filter(|&i| self.matrices[i].is_none());
        for (i, p) in fallback_slots.zip(fb_params) {
            params[i] = p;
        }
        Ok(())
    }

    /// timm's Muon step of matrix `i` (`(rows, cols)`), with C-Optim's mask first
    /// under caution.
    fn matrix_step(&mut self, i: usize, (rows, cols): (usize, usize), p: &mut [f64], g: &[f64]) {
        let mu = self.muon.momentum;
        let m = &mut self.momentum[i];
        for (mv, gv) in m.iter_mut().zip(g) {
            *mv += (1.0 - mu) * (gv - *mv);
        }
        let mut u: Vec<f64> = if self.muon.nesterov {
            g.iter()
                .zip(m.iter())
                .map(|(gv, mv)| gv + mu * (mv - gv))
                .collect()
        } else {
            m.clone()
        };
        if self.caution.is_on() {
            let agree: Vec<bool> = m.iter().zip(g).map(|(mv, gv)| mv * gv > 0.0).collect();
            let kept = agree.iter().filter(|&&a| a).count() as u64;
            let scale = self.caution.scale(kept, g.len() as u64);
            let off = self.caution.disagree_weight();
            for (uv, a) in u.iter_mut().zip(agree) {
                *uv *= scale * if a { 1.0 } else { off };
            }
        }
        let coefficients = self.muon.ns_coefficients.sequence(self.muon.ns_steps);
        let x = newton_schulz(&u, rows, cols, &coefficients, self.muon.eps);
        let step = self.lr * self.muon.adjust_lr.scale(rows, cols);
        let decay = 1.0 - self.lr * self.weight_decay;
        for (pv, xv) in p.iter_mut().zip(x) {
            *pv = *pv * decay - step * xv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::muon::NsCoefficients;

    #[test]
    fn newton_schulz_of_an_orthogonal_matrix_stays_near_it() {
        // A 4x4 permutation matrix scaled: its normalized form has singular values
        // 1/2, which five quintic steps map into the band of ~[0.7, 1.2].
        let mut g = vec![0.0; 16];
        for (i, j) in [(0, 2), (1, 0), (2, 3), (3, 1)] {
            g[i * 4 + j] = 3.0;
        }
        let x = newton_schulz(&g, 4, 4, &NsCoefficients::Quintic.sequence(5), 1e-7);
        for (i, j) in [(0, 2), (1, 0), (2, 3), (3, 1)] {
            assert!((0.6..1.3).contains(&x[i * 4 + j]), "{}", x[i * 4 + j]);
        }
        assert_eq!(x.iter().filter(|v| v.abs() > 1e-12).count(), 4);
    }

    #[test]
    fn tall_matrices_orthogonalize_through_the_transpose() {
        let g: Vec<f64> = (0..24).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
        let seq = NsCoefficients::Quintic.sequence(5);
        let tall = newton_schulz(&g, 6, 4, &seq, 1e-7);
        let wide = newton_schulz(&transpose(&g, 6, 4), 4, 6, &seq, 1e-7);
        assert_eq!(tall, transpose(&wide, 4, 6));
    }

    #[test]
    fn coefficient_sequences_repeat_the_last_triple() {
        let s = NsCoefficients::Original.sequence(3);
        assert_eq!(s, vec![[3.4445, -4.7750, 2.0315]; 3]);
        assert_eq!(NsCoefficients::Quintic.sequence(2).len(), 2);
        assert_eq!(
            NsCoefficients::by_name("polar_express")
                .unwrap()
                .triples()
                .len(),
            8
        );
        assert!(NsCoefficients::by_name("cubic").is_err());
    }

    #[test]
    fn timm_suitability_rule() {
        assert_eq!(muon_matrix(&[64, 128]), Some((64, 128)));
        assert_eq!(muon_matrix(&[96, 3, 4, 4]), Some((96, 48)));
        assert_eq!(muon_matrix(&[4, 2048]), None);
        assert_eq!(muon_matrix(&[64]), None);
        assert_eq!(muon_matrix(&[1, 196, 768]), None);
        assert_eq!(muon_matrix(&[3, 64]), None);
    }
}
