// nn_elementwise.wgsl: activations, SwiGLU's gate, broadcast adds and their gradients.
//
// One invocation per element (or per column for sum_rows), over a 2-D grid of
// workgroups so that large tensors stay under the per-dimension dispatch limit.
// Gradient outputs are overwritten, or added to when params.accumulate != 0 (a
// tensor read by several ops collects its gradient from each of them).
//
// Entry points and the bindings each uses:
//   activation_forward:  y = f(x)                          params, x, out
//   activation_backward: dx (+)= dy * f'(x)                params, x, dy, out
//   silu_gate_forward:   y = silu(x) * other               params, x, other, out
//                        (x: the gate, other: the up projection)
//   silu_gate_backward_gate: dgate (+)= dy * other * silu'(x)
//                                                          params, x, other, dy, out
//   silu_gate_backward_up:   dup (+)= dy * silu(x)         params, x, dy, out
//   add_forward:         y = x + other[i % period]         params, x, other, out
//                        (residual add: period = len; bias add: period = features)
//   accumulate:          dst (+)= src                      params, dy, out
//   sum_rows:            dst[c] (+)= sum_r src[r * period + c], c < period
//                        (gradient of a broadcast operand)  params, dy, out
//
// WG_SIZE comes from the generated constants, Invocation and flat_index from
// lib/grid.wgsl and accumulated from lib/accumulate.wgsl (src/nn/kernels.rs assembles
// the module).
//
// Bindings (group 0), declared by the builder from ELEMENTWISE in
// src/nn/ops/elementwise.rs, which also defines the uniform block EwParams:
//   params  uniform      EwParams
//   x       storage r    input values
//   other   storage r    second operand (add_forward, the silu_gate kernels)
//   dy      storage r    upstream gradient (or source of accumulate / sum_rows)
//   out     storage rw   output values or gradient

// Activation kinds (EwParams.mode).
const ACT_RELU: u32 = 0u;
const ACT_GELU_TANH: u32 = 1u;
const ACT_GELU_ERF: u32 = 2u;

// sqrt(2 / pi), the GELU tanh-form coefficients, and 1 / sqrt(2 pi).
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_CUBIC: f32 = 0.044715;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
// tanh(|u|) rounds to 1 in f32 beyond this; clamping avoids inf / inf in some
// implementations of tanh.
const TANH_CLAMP: f32 = 10.0;

// erfc(z) with fractional error below 1.2e-7 everywhere (Numerical Recipes erfcc,
// a Chebyshev fit), so the GELU tails keep their relative accuracy.
fn erfc_approx(z: f32) -> f32 {
    let az = abs(z);
    let t = 1.0 / (1.0 + 0.5 * az);
    let poly = -az * az - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(poly);
    return select(2.0 - r, r, z >= 0.0);
}

// Standard normal CDF.
fn normal_cdf(v: f32) -> f32 {
    return 0.5 * erfc_approx(-v * INV_SQRT_2);
}

fn gelu_tanh_inner(v: f32) -> f32 {
    return tanh(clamp(SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v), -TANH_CLAMP, TANH_CLAMP));
}

fn activation(v: f32) -> f32 {
    switch params.mode {
        case ACT_GELU_TANH: {
            return 0.5 * v * (1.0 + gelu_tanh_inner(v));
        }
        case ACT_GELU_ERF: {
            return v * normal_cdf(v);
        }
        default: {
            return max(v, 0.0);
        }
    }
}

fn activation_derivative(v: f32) -> f32 {
    switch params.mode {
        case ACT_GELU_TANH: {
            let t = gelu_tanh_inner(v);
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * v * v);
            return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du;
        }
        case ACT_GELU_ERF: {
            return normal_cdf(v) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
        }
        default: {
            return select(0.0, 1.0, v > 0.0);
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn activation_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        out[i] = activation(x[i]);
    }
}

@compute @workgroup_size(WG_SIZE)
fn activation_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        out[i] = accumulated(dy[i] * activation_derivative(x[i]), out[i], params.accumulate);
    }
}

// exp(-x) in the SiLU kernels is taken at most at this argument (e^80 is finite in
// f32): below x = -80, silu(x) and its derivative are below 1e-32 either way, and no
// implementation's exp has to overflow.
const SIGMOID_EXP_MAX: f32 = 80.0;

// 1 + exp(-x), the denominator of silu and sigmoid.
fn sigmoid_denominator(v: f32) -> f32 {
    return 1.0 + exp(min(-v, SIGMOID_EXP_MAX));
}

// x * sigmoid(x), as torch computes it: x / (1 + exp(-x)).
fn silu(v: f32) -> f32 {
    return v / sigmoid_denominator(v);
}

// d silu / dx = s (1 + x (1 - s)), s = sigmoid(x) (torch's silu_backward).
fn silu_derivative(v: f32) -> f32 {
    let s = 1.0 / sigmoid_denominator(v);
    return s * (1.0 + v * (1.0 - s));
}

@compute @workgroup_size(WG_SIZE)
fn silu_gate_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        out[i] = silu(x[i]) * other[i];
    }
}

@compute @workgroup_size(WG_SIZE)
fn silu_gate_backward_gate(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let v = dy[i] * other[i] * silu_derivative(x[i]);
        out[i] = accumulated(v, out[i], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn silu_gate_backward_up(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        out[i] = accumulated(dy[i] * silu(x[i]), out[i], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn add_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        out[i] = x[i] + other[i % params.period];
    }
}

@compute @workgroup_size(WG_SIZE)
fn accumulate(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        out[i] = accumulated(dy[i], out[i], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn sum_rows(inv: Invocation) {
    let col = flat_index(inv);
    if col < params.period {
        var s = 0.0;
        for (var i = col; i < params.len; i += params.period) {
            s += dy[i];
        }
        out[col] = accumulated(s, out[col], params.accumulate);
    }
}
