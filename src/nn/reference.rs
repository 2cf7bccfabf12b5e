//! f64 CPU reference implementations of every nn op: forward and analytic backward.
//!
//! Plain row-major loops, written for clarity, with the same conventions as the GPU
//! ops (and PyTorch): each `*_backward` takes the upstream gradient `dy` and returns
//! the gradients of the inputs. The gradient checks compare the GPU against these and
//! these against finite differences.

use crate::nn::graph::Activation;

/// `a [m, k] @ b [k, n]`.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let av = a[i * k + p];
            for j in 0..n {
                c[i * n + j] += av * b[p * n + j];
            }
        }
    }
    c
}

/// The transpose of a row-major `[rows, cols]` matrix.
pub fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = x[i * cols + j];
        }
    }
    t
}

/// `x [rows, in] @ w^T + b` with `w [out, in]`.
pub fn linear(
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    rows: usize,
    inp: usize,
    out: usize,
) -> Vec<f64> {
    let mut y = matmul(x, &transpose(w, out, inp), rows, inp, out);
    if let Some(b) = b {
        add_broadcast(&mut y, b);
    }
    y
}

/// Gradients of [`linear`]: `(dx, dw, db)`.
pub fn linear_backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    rows: usize,
    inp: usize,
    out: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let dx = matmul(dy, w, rows, out, inp);
    let dw = matmul(&transpose(dy, rows, out), x, out, rows, inp);
    (dx, dw, sum_rows(dy, out))
}

/// `y += b` with `b` repeated over `y` (period `b.len()`).
pub fn add_broadcast(y: &mut [f64], b: &[f64]) {
    for (i, v) in y.iter_mut().enumerate() {
        *v += b[i % b.len()];
    }
}

/// `out[c] = sum_r x[r * period + c]`: the gradient of a broadcast operand.
pub fn sum_rows(x: &[f64], period: usize) -> Vec<f64> {
    let mut s = vec![0.0; period];
    for (i, v) in x.iter().enumerate() {
        s[i % period] += v;
    }
    s
}

/// `erf(x)` to about 1e-15: Taylor series for |x| < 3, continued fraction beyond.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 3.0 {
        // erf(a) = 2/sqrt(pi) * sum_n (-1)^n a^(2n+1) / (n! (2n+1))
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        // erfc(a) = exp(-a^2) / sqrt(pi) / (a + 1/2 / (a + 1 / (a + 3/2 / (a + ...))))
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    };
    r.copysign(x)
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044715;

/// `f(x)` of an [`Activation`].
pub fn activation(x: &[f64], kind: Activation) -> Vec<f64> {
    x.iter()
        .map(|&v| match kind {
            Activation::Relu => v.max(0.0),
            Activation::GeluTanh => {
                0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v)).tanh())
            }
            Activation::GeluErf => 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)),
        })
        .collect()
}

/// `dy * f'(x)` of an [`Activation`] (ReLU's derivative at 0 is 0).
pub fn activation_backward(x: &[f64], dy: &[f64], kind: Activation) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| {
            g * match kind {
                Activation::Relu => f64::from(v > 0.0),
                Activation::GeluTanh => {
                    let t = (SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v)).tanh();
                    0.5 * (1.0 + t)
                        + 0.5
                            * v
                            * (1.0 - t * t)
                            * SQRT_2_OVER_PI
                            * (1.0 + 3.0 * GELU_CUBIC * v * v)
                }
                Activation::GeluErf => {
                    0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2))
                        + v * (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt()
                }
            }
        })
        .collect()
}

/// LayerNorm over rows of `dim` (biased variance).
pub fn layer_norm(x: &[f64], w: &[f64], b: &[f64], dim: usize, eps: f64) -> Vec<f64> {
    let mut y = normalized(x, w, dim, eps, true);
    add_broadcast(&mut y, b);
    y
}

/// `(x - mean) * rstd * w` per row of `dim`, or `x * rstd * w` (RMSNorm) when not
/// `centered` (the variance is then the mean square).
fn normalized(x: &[f64], w: &[f64], dim: usize, eps: f64, centered: bool) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(dim) {
        let (mean, rstd) = moments(row, eps, centered);
        y.extend(row.iter().zip(w).map(|(v, w)| (v - mean) * rstd * w));
    }
    y
}

/// The mean (0 unless `centered`) and `1 / sqrt(mean((x - mean)^2) + eps)` of a row.
fn moments(row: &[f64], eps: f64, centered: bool) -> (f64, f64) {
    let n = row.len() as f64;
    let mean = match centered {
        true => row.iter().sum::<f64>() / n,
        false => 0.0,
    };
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Gradients of [`layer_norm`]: `(dx, dw, db)`.
pub fn layer_norm_backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    dim: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (dx, dw) = normalized_backward(x, w, dy, dim, eps, true);
    (dx, dw, sum_rows(dy, dim))
}

/// Gradients `(dx, dw)` of [`normalized`].
fn normalized_backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    dim: usize,
    eps: f64,
    centered: bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut dx = Vec::with_capacity(x.len());
    let mut dw = vec![0.0; dim];
    for (row, g) in x.chunks(dim).zip(dy.chunks(dim)) {
        let (mean, rstd) = moments(row, eps, centered);
        let xhat: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
        let gw: Vec<f64> = g.iter().zip(w).map(|(a, b)| a * b).collect();
        let n = dim as f64;
        let mg = match centered {
            true => gw.iter().sum::<f64>() / n,
            false => 0.0,
        };
        let mgx = gw.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / n;
        dx.extend((0..dim).map(|j| rstd * (gw[j] - mg - xhat[j] * mgx)));
        for j in 0..dim {
            dw[j] += g[j] * xhat[j];
        }
    }
    (dx, dw)
}

/// RMSNorm over rows of `dim` (HF `LlamaRMSNorm`): `x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(x: &[f64], w: &[f64], dim: usize, eps: f64) -> Vec<f64> {
    normalized(x, w, dim, eps, false)
}

/// Gradients of [`rms_norm`]: `(dx, dw)`.
pub fn rms_norm_backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    dim: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>) {
    normalized_backward(x, w, dy, dim, eps, false)
}

/// Sizes of a rotary position embedding on `[batch, tokens, heads * head_dim]`.
#[derive(Debug, Clone, Copy)]
pub struct RopeShape {
    /// Tokens per sequence (positions 0, 1, ...).
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
    /// Features per head (even).
    pub head_dim: usize,
    /// The frequency base (10000 in LLaMA).
    pub theta: f64,
}

/// RoPE in HF's `rotate_half` convention (see
/// [`GraphBuilder::rope`](crate::nn::GraphBuilder::rope)), angles in f64.
pub fn rope(x: &[f64], s: RopeShape) -> Vec<f64> {
    rotate_pairs(x, s, 1.0)
}

/// Gradient of [`rope`]: the inverse rotation of `dy`.
pub fn rope_backward(dy: &[f64], s: RopeShape) -> Vec<f64> {
    rotate_pairs(dy, s, -1.0)
}

/// Rotates features `i` and `i + head_dim / 2` of every head of token `t` by
/// `direction * t * theta^(-2i / head_dim)`.
fn rotate_pairs(x: &[f64], s: RopeShape, direction: f64) -> Vec<f64> {
    let half = s.head_dim / 2;
    let mut y = x.to_vec();
    for (r, head) in y.chunks_mut(s.head_dim).enumerate() {
        let t = (r / s.heads % s.tokens) as f64;
        for i in 0..half {
            let angle = t * s.theta.powf(-2.0 * i as f64 / s.head_dim as f64);
            let (sin, cos) = (direction * angle).sin_cos();
            let (a, b) = (head[i], head[i + half]);
            head[i] = a * cos - b * sin;
            head[i + half] = b * cos + a * sin;
        }
    }
    y
}

/// SwiGLU's gate: `silu(gate) * up` elementwise, `silu(x) = x / (1 + exp(-x))`.
pub fn silu_gate(gate: &[f64], up: &[f64]) -> Vec<f64> {
    gate.iter()
        .zip(up)
        .map(|(&g, &u)| g / (1.0 + (-g).exp()) * u)
        .collect()
}

/// Gradients of [`silu_gate`]: `(dgate, dup)`.
pub fn silu_gate_backward(gate: &[f64], up: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut dgate = Vec::with_capacity(gate.len());
    let mut dup = Vec::with_capacity(gate.len());
    for ((&g, &u), &d) in gate.iter().zip(up).zip(dy) {
        let s = 1.0 / (1.0 + (-g).exp());
        dgate.push(d * u * s * (1.0 + g * (1.0 - s)));
        dup.push(d * g * s);
    }
    (dgate, dup)
}

/// Softmax over rows of `dim`.
pub fn softmax(x: &[f64], dim: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(dim) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        y.extend(e.iter().map(|v| v / s));
    }
    y
}

/// Gradient of [`softmax`] from its output `y`.
pub fn softmax_backward(y: &[f64], dy: &[f64], dim: usize) -> Vec<f64> {
    let mut dx = Vec::with_capacity(y.len());
    for (yr, gr) in y.chunks(dim).zip(dy.chunks(dim)) {
        let dot: f64 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        dx.extend(yr.iter().zip(gr).map(|(a, b)| a * (b - dot)));
    }
    dx
}

/// Sizes of a multi-head attention on `qkv [batch, tokens, 3 * dim]`, or on `q`, `k`,
/// `v` `[batch, tokens, dim]` each.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Sequences.
    pub batch: usize,
    /// Tokens per sequence.
    pub tokens: usize,
    /// Model width (all heads).
    pub dim: usize,
    /// Heads; `dim` is a multiple.
    pub heads: usize,
}

impl AttentionShape {
    fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// `[tokens, head_dim]` of head `h` of batch `b` in a `[batch, tokens, width]`
    /// tensor whose heads start at feature `offset`.
    fn gather(&self, x: &[f64], width: usize, offset: usize, b: usize, h: usize) -> Vec<f64> {
        let (n, hd) = (self.tokens, self.head_dim());
        let mut out = Vec::with_capacity(n * hd);
        for t in 0..n {
            let base = (b * n + t) * width + offset + h * hd;
            out.extend_from_slice(&x[base..base + hd]);
        }
        out
    }

    /// Writes `src` `[tokens, head_dim]` where [`AttentionShape::gather`] reads it.
    fn scatter(
        &self,
        dst: &mut [f64],
        src: &[f64],
        width: usize,
        offset: usize,
        b: usize,
        h: usize,
    ) {
        let (n, hd) = (self.tokens, self.head_dim());
        for t in 0..n {
            let base = (b * n + t) * width + offset + h * hd;
            dst[base..base + hd].copy_from_slice(&src[t * hd..(t + 1) * hd]);
        }
    }

    /// Q, K, V `[batch, tokens, dim]` out of a packed `[batch, tokens, 3 * dim]`.
    fn unpack(&self, qkv: &[f64]) -> [Vec<f64>; 3] {
        let (n, d) = (self.tokens, self.dim);
        [0, 1, 2].map(|part| {
            let rows = qkv.chunks(3 * d).take(self.batch * n);
            rows.flat_map(|row| row[part * d..(part + 1) * d].to_vec())
                .collect()
        })
    }

    /// [`AttentionShape::unpack`] inverted.
    fn pack(&self, parts: [Vec<f64>; 3]) -> Vec<f64> {
        let d = self.dim;
        let rows = (0..self.batch * self.tokens).flat_map(|r| {
            parts
                .iter()
                .flat_map(move |p| p[r * d..(r + 1) * d].iter().copied())
        });
        rows.collect()
    }
}

/// The query, key and value `[tokens, head_dim]` of head `h` of batch item `b`, and
/// its probabilities `softmax(Q K^T / sqrt(head_dim))` `[tokens, tokens]`, with
/// `S[i, j] = -inf` for `j > i` first when `causal`.
fn head_attention(
    [q, k, v]: [&[f64]; 3],
    s: AttentionShape,
    causal: bool,
    (b, h): (usize, usize),
) -> [Vec<f64>; 4] {
    let (n, hd) = (s.tokens, s.head_dim());
    let scale = 1.0 / (hd as f64).sqrt();
    let [q, k, v] = [q, k, v].map(|x| s.gather(x, s.dim, 0, b, h));
    let mut scores = matmul(&q, &transpose(&k, n, hd), n, hd, n);
    for (idx, x) in scores.iter_mut().enumerate() {
        let masked = causal && idx % n > idx / n;
        *x = if masked {
            f64::NEG_INFINITY
        } else {
            *x * scale
        };
    }
    let p = softmax(&scores, n);
    [q, k, v, p]
}

/// Multi-head attention on separate `q`, `k`, `v` `[batch, tokens, dim]`:
/// `softmax(Q K^T / sqrt(head_dim)) V` per head (causal: query `i` sees keys
/// `0..=i`), heads merged into `[batch, tokens, dim]`.
pub fn multi_head_attention(qkv: [&[f64]; 3], s: AttentionShape, causal: bool) -> Vec<f64> {
    let (n, d, hd) = (s.tokens, s.dim, s.head_dim());
    let mut out = vec![0.0; s.batch * n * d];
    for b in 0..s.batch {
        for h in 0..s.heads {
            let [_, _, v, p] = head_attention(qkv, s, causal, (b, h));
            s.scatter(&mut out, &matmul(&p, &v, n, n, hd), d, 0, b, h);
        }
    }
    out
}

/// Gradients of [`multi_head_attention`] with respect to `q`, `k` and `v`.
pub fn multi_head_attention_backward(
    qkv: [&[f64]; 3],
    dy: &[f64],
    s: AttentionShape,
    causal: bool,
) -> [Vec<f64>; 3] {
    let (n, d, hd) = (s.tokens, s.dim, s.head_dim());
    let scale = 1.0 / (hd as f64).sqrt();
    let mut grads = [(); 3].map(|_| vec![0.0; dy.len()]);
    for b in 0..s.batch {
        for h in 0..s.heads {
            let [q, k, v, p] = head_attention(qkv, s, causal, (b, h));
            let d_o = s.gather(dy, d, 0, b, h);
            let dp = matmul(&d_o, &transpose(&v, n, hd), n, hd, n);
            let dv = matmul(&transpose(&p, n, n), &d_o, n, n, hd);
            let mut ds = softmax_backward(&p, &dp, n);
            ds.iter_mut().for_each(|x| *x *= scale);
            let dq = matmul(&ds, &k, n, n, hd);
            let dk = matmul(&transpose(&ds, n, n), &q, n, n, hd);
            for (grad, part) in grads.iter_mut().zip([dq, dk, dv]) {
                s.scatter(grad, &part, d, 0, b, h);
            }
        }
    }
    grads
}

/// Multi-head attention on a packed `qkv [batch, tokens, 3 * dim]` (features ordered
/// q/k/v, head, head_dim), not causal.
pub fn attention(qkv: &[f64], s: AttentionShape) -> Vec<f64> {
    let [q, k, v] = s.unpack(qkv);
    multi_head_attention([&q, &k, &v], s, false)
}

/// Gradient of [`attention`] with respect to `qkv`.
pub fn attention_backward(qkv: &[f64], dy: &[f64], s: AttentionShape) -> Vec<f64> {
    let [q, k, v] = s.unpack(qkv);
    s.pack(multi_head_attention_backward([&q, &k, &v], dy, s, false))
}

/// Images `[batch, channels, height, width]` to `[batch, patches, channels * p * p]`
/// (see [`GraphBuilder::patchify`](crate::nn::GraphBuilder::patchify)).
pub fn patchify(x: &[f64], shape: [usize; 4], p: usize) -> Vec<f64> {
    let map = patch_map(shape, p);
    map.iter().map(|&i| x[i]).collect()
}

/// Gradient of [`patchify`].
pub fn patchify_backward(dy: &[f64], shape: [usize; 4], p: usize) -> Vec<f64> {
    let mut dx = vec![0.0; dy.len()];
    for (o, &i) in patch_map(shape, p).iter().enumerate() {
        dx[i] += dy[o];
    }
    dx
}

/// For each output element of [`patchify`], the image element it copies.
fn patch_map([b, c, h, w]: [usize; 4], p: usize) -> Vec<usize> {
    let (gh, gw) = (h / p, w / p);
    let mut map = Vec::with_capacity(b * c * h * w);
    for bi in 0..b {
        for py in 0..gh {
            for px in 0..gw {
                for ci in 0..c {
                    for ky in 0..p {
                        for kx in 0..p {
                            map.push(((bi * c + ci) * h + py * p + ky) * w + px * p + kx);
                        }
                    }
                }
            }
        }
    }
    map
}

/// `[batch, n, dim]` with `token [dim]` prepended to each sequence.
pub fn prepend_token(x: &[f64], token: &[f64], batch: usize, n: usize) -> Vec<f64> {
    let d = token.len();
    let mut y = Vec::with_capacity(batch * (n + 1) * d);
    for b in 0..batch {
        y.extend_from_slice(token);
        y.extend_from_slice(&x[b * n * d..(b + 1) * n * d]);
    }
    y
}

/// Gradients of [`prepend_token`]: `(dx, dtoken)`.
pub fn prepend_token_backward(
    dy: &[f64],
    batch: usize,
    n: usize,
    d: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut dx = Vec::with_capacity(batch * n * d);
    let mut dt = vec![0.0; d];
    for b in 0..batch {
        let seq = &dy[b * (n + 1) * d..(b + 1) * (n + 1) * d];
        dt.iter_mut().zip(&seq[..d]).for_each(|(a, g)| *a += g);
        dx.extend_from_slice(&seq[d..]);
    }
    (dx, dt)
}

/// The mean over tokens of `[batch, n, dim]`.
pub fn mean_tokens(x: &[f64], batch: usize, n: usize, d: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * d];
    for b in 0..batch {
        for t in 0..n {
            for j in 0..d {
                y[b * d + j] += x[(b * n + t) * d + j] / n as f64;
            }
        }
    }
    y
}

/// Gradient of [`mean_tokens`].
pub fn mean_tokens_backward(dy: &[f64], batch: usize, n: usize, d: usize) -> Vec<f64> {
    (0..batch * n * d)
        .map(|i| dy[(i / (n * d)) * d + i % d] / n as f64)
        .collect()
}

/// Token `index` of every sequence of `[batch, n, dim]`.
pub fn select_token(x: &[f64], batch: usize, n: usize, d: usize, index: usize) -> Vec<f64> {
    (0..batch)
        .flat_map(|b| x[(b * n + index) * d..(b * n + index + 1) * d].to_vec())
        .collect()
}

/// Gradient of [`select_token`].
pub fn select_token_backward(
    dy: &[f64],
    batch: usize,
    n: usize,
    d: usize,
    index: usize,
) -> Vec<f64> {
    let mut dx = vec![0.0; batch * n * d];
    for b in 0..batch {
        dx[(b * n + index) * d..(b * n + index + 1) * d].copy_from_slice(&dy[b * d..(b + 1) * d]);
    }
    dx
}

/// Mean softmax cross-entropy of `logits [batch, classes]` against `labels`.
pub fn cross_entropy(logits: &[f64], labels: &[u32], classes: usize) -> f64 {
    let total: f64 = logits
        .chunks(classes)
        .zip(labels)
        .map(|(row, &l)| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            lse - row[l as usize]
        })
        .sum();
    total / labels.len() as f64
}

/// Gradient of [`cross_entropy`] with respect to the logits, times `dloss`.
pub fn cross_entropy_backward(
    logits: &[f64],
    labels: &[u32],
    classes: usize,
    dloss: f64,
) -> Vec<f64> {
    let mut d = softmax(logits, classes);
    let scale = dloss / labels.len() as f64;
    for (r, &l) in labels.iter().enumerate() {
        d[r * classes + l as usize] -= 1.0;
    }
    d.iter_mut().for_each(|v| *v *= scale);
    d
}

/// Rows whose first maximal logit is at the label (`torch.argmax` semantics).
pub fn correct_count(logits: &[f64], labels: &[u32], classes: usize) -> usize {
    logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, l)| {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
            best == **l as usize
        })
        .count()
}

/// Token embedding: row `ids[t]` of `table [vocab, dim]` for every id, `[ids, dim]`.
pub fn embedding(table: &[f64], ids: &[u32], dim: usize) -> Vec<f64> {
    ids.iter()
        .flat_map(|&id| {
            table[id as usize * dim..(id as usize + 1) * dim]
                .iter()
                .copied()
        })
        .collect()
}

/// Gradient of [`embedding`] with respect to the table `[vocab, dim]`: row `r` is the
/// sum of the upstream rows of the tokens whose id is `r`.
pub fn embedding_backward(ids: &[u32], dy: &[f64], vocab: usize, dim: usize) -> Vec<f64> {
    let mut dtable = vec![0.0; vocab * dim];
    for (t, &id) in ids.iter().enumerate() {
        let row = &mut dtable[id as usize * dim..(id as usize + 1) * dim];
        row.iter_mut()
            .zip(&dy[t * dim..(t + 1) * dim])
            .for_each(|(d, g)| *d += g);
    }
    dtable
}

/// The sizes of a per-sample token gather: `x` is `[batch, sources, dim]`, the ids
/// and the result `[batch, tokens(, dim)]`.
#[derive(Debug, Clone, Copy)]
pub struct GatherShape {
    /// Samples (B).
    pub batch: usize,
    /// Source tokens per sample (S).
    pub sources: usize,
    /// Output tokens per sample (T).
    pub tokens: usize,
    /// Features per token (D).
    pub dim: usize,
}

/// Per output token, the row of `x` it copies (`None`: the fill token).
fn gathered_rows(ids: &[u32], s: GatherShape) -> impl Iterator<Item = Option<usize>> + '_ {
    ids.iter().enumerate().map(move |(i, &id)| {
        let b = i / s.tokens;
        ((id as usize) < s.sources).then_some(b * s.sources + id as usize)
    })
}

/// `out[b, t] = x[b, ids[b, t]]`, or `fill` for an id at or above `s.sources` (see
/// [`GraphBuilder::gather_tokens`](crate::nn::GraphBuilder::gather_tokens) and
/// [`GraphBuilder::unshuffle_tokens`](crate::nn::GraphBuilder::unshuffle_tokens)).
///
/// # Panics
/// When an id is at or above `s.sources` and there is no `fill`.
pub fn gather_tokens(x: &[f64], ids: &[u32], fill: Option<&[f64]>, s: GatherShape) -> Vec<f64> {
    gathered_rows(ids, s)
        .flat_map(|row| match row {
            Some(r) => &x[r * s.dim..(r + 1) * s.dim],
            None => fill.expect("an id beyond the sources needs a fill token"),
        })
        .copied()
        .collect()
}

/// Gradients of [`gather_tokens`]: `(dx, dfill)`, each source row summing the output
/// rows that copy it and the fill summing the rest.
pub fn gather_tokens_backward(ids: &[u32], dy: &[f64], s: GatherShape) -> (Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; s.batch * s.sources * s.dim];
    let mut dfill = vec![0.0; s.dim];
    for (row, g) in gathered_rows(ids, s).zip(dy.chunks(s.dim)) {
        let into = match row {
            Some(r) => &mut dx[r * s.dim..(r + 1) * s.dim],
            None => &mut dfill[..],
        };
        into.iter_mut().zip(g).for_each(|(d, g)| *d += g);
    }
    (dx, dfill)
}

/// The masked MSE's target rows of `p` values: as given, or normalized per row to
/// `(t - mean) / sqrt(var + 1e-6)` with the unbiased variance (MAE's norm_pix_loss).
fn mse_targets(target: &[f64], p: usize, normalize: bool) -> Vec<f64> {
    if !normalize {
        return target.to_vec();
    }
    target
        .chunks(p)
        .flat_map(|row| {
            let mean = row.iter().sum::<f64>() / p as f64;
            let var = row.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (p - 1) as f64;
            let std = (var + 1e-6).sqrt();
            row.iter().map(move |t| (t - mean) / std)
        })
        .collect()
}

/// MAE's loss (see [`GraphBuilder::masked_mse`](crate::nn::GraphBuilder::masked_mse)):
/// `sum_r mask_r mean_j (pred_rj - t_rj)^2 / sum_r mask_r` over rows of `p` values.
pub fn masked_mse(pred: &[f64], target: &[f64], mask: &[f64], p: usize, normalize: bool) -> f64 {
    let t = mse_targets(target, p, normalize);
    let per_row = pred
        .chunks(p)
        .zip(t.chunks(p))
        .map(|(x, t)| x.iter().zip(t).map(|(x, t)| (x - t).powi(2)).sum::<f64>() / p as f64);
    let total: f64 = per_row.zip(mask).map(|(l, m)| l * m).sum();
    total / mask.iter().sum::<f64>()
}

/// Gradient of [`masked_mse`] with respect to `pred`, times `dloss`.
pub fn masked_mse_backward(
    (pred, target, mask): (&[f64], &[f64], &[f64]),
    p: usize,
    normalize: bool,
    dloss: f64,
) -> Vec<f64> {
    let t = mse_targets(target, p, normalize);
    let scale = 2.0 * dloss / (p as f64 * mask.iter().sum::<f64>());
    pred.iter()
        .zip(&t)
        .enumerate()
        .map(|(i, (x, t))| scale * mask[i / p] * (x - t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf(0.5), erf(1), erf(2), erf(3.5) to 16 digits.
        let known = [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
        ];
        for (x, e) in known {
            assert!((erf(x) - e).abs() < 1e-15, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + e).abs() < 1e-15);
        }
    }

    /// MAE's `patchify` (models_mae.py: `imgs.reshape(n, c, h, p, w, p)`, einsum
    /// `nchpwq->nhwpqc`, reshape to `[n, h * w, p * p * c]`), transcribed literally.
    fn mae_patchify(imgs: &[f64], [_, c, hh, ww]: [usize; 4], p: usize) -> Vec<f64> {
        let (h, w) = (hh / p, ww / p);
        let mut out = vec![0.0; imgs.len()];
        for (i, o) in out.iter_mut().enumerate() {
            let (ci, q) = (i % c, (i / c) % p);
            let (pi, wi) = ((i / (c * p)) % p, (i / (c * p * p)) % w);
            let (hi, ni) = ((i / (c * p * p * w)) % h, i / (c * p * p * w * h));
            *o = imgs[((ni * c + ci) * hh + hi * p + pi) * ww + wi * p + q];
        }
        out
    }

    /// coptim's patchify (the ViT's Conv2d order, features (c, row, column)) is MAE's
    /// loss target order (row, column, c) for one channel, as the digits have; with
    /// more channels the two orders differ within each patch.
    #[test]
    fn patchify_is_the_mae_target_order_for_one_channel() {
        let (p, n) = (7, 2);
        for c in [1, 3] {
            let shape = [n, c, 28, 14];
            let imgs: Vec<f64> = (0..n * c * 28 * 14).map(|i| i as f64).collect();
            let (ours, mae) = (patchify(&imgs, shape, p), mae_patchify(&imgs, shape, p));
            assert_eq!(ours == mae, c == 1, "{c} channels");
            let [a, b] = [ours, mae].map(|v| {
                let mut v: Vec<Vec<u64>> = v
                    .chunks(c * p * p)
                    .map(|patch| patch.iter().map(|x| *x as u64).collect())
                    .collect();
                v.iter_mut().for_each(|patch| patch.sort());
                v
            });
            assert_eq!(a, b, "{c} channels: the same pixels in each patch");
        }
    }
}
