//! L2-regularised logistic regression, positives against negatives with optional sample
//! weights, by Newton's method (IRLS): the Hessian is a weighted Gram (`moments::weighted_scatter`,
//! the moments' block machinery) solved by Cholesky. Features are centred on the weighted mean of
//! all rows for conditioning; the intercept is not penalised. Deterministic: every sum runs in a
//! fixed order.
//!
//! As reference_ratio.fit_logistic: minimises Σ_i s_i·softplus(−y_i·(w·x_i + b)) / Σ s_i +
//! (λ/2)‖w‖², y = +1 for positives, −1 for negatives, from zero, by Newton steps halved until
//! the objective does not increase (the Hessian gets 1e-12·max(1, its largest diagonal)·I so
//! that λ = 0 works on separable data and huge values do not round it indefinite); stops when a
//! step decreases the objective by less than `tolerance`, when no halving helps, or after
//! `max_iter` steps (`converged` says which).

use crate::error::GioError;
use crate::ratio::moments::weighted_scatter;
use crate::ratio::solve::Cholesky;
use crate::rows::{Element, Rows};
use crate::simd::dot;

/// A fitted model: logit(x) = w·x + bias.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    pub w: Vec<f64>,
    pub bias: f64,
    pub iterations: usize,
    pub converged: bool,
    /// The objective at the returned model (weights normalised to sum 1).
    pub loss: f64,
}

/// Options of `fit_logistic`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticOptions {
    /// λ, the L2 penalty on w (>= 0).
    pub l2: f64,
    pub max_iter: usize,
    pub tolerance: f64,
}

impl Default for LogisticOptions {
    fn default() -> Self {
        LogisticOptions {
            l2: 1e-2,
            max_iter: 30,
            tolerance: 1e-8,
        }
    }
}

/// log(1 + eˣ) without overflow.
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Rows with labels and weights, stacked (positives first) into one float64 matrix.
struct Problem {
    x: Vec<f64>,
    y: Vec<f64>,
    s: Vec<f64>,
    centre: Vec<f64>,
    dim: usize,
}

impl Problem {
    fn new<P: Element, N: Element>(
        positives: Rows<'_, P>,
        negatives: Rows<'_, N>,
        weights: Option<&[f64]>,
    ) -> Result<Self, GioError> {
        let dim = positives.dim();
        if negatives.dim() != dim {
            return Err(GioError::invalid(
                "negatives",
                format!("must have {dim} columns"),
            ));
        }
        if positives.is_empty() || negatives.is_empty() {
            return Err(GioError::invalid(
                "positives",
                "both classes need at least one row",
            ));
        }
        let n = positives.len() + negatives.len();
        let s = weights.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
        if s.len() != n || s.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(GioError::invalid(
                "sample_weight",
                format!("must hold {n} finite values >= 0"),
            ));
        }
        let mut x: Vec<f64> = positives.data().iter().map(|v| v.to_f64()).collect();
        x.extend(negatives.data().iter().map(|v| v.to_f64()));
        let mut y = vec![1.0; positives.len()];
        y.resize(n, -1.0);
        let total: f64 = s.iter().sum();
        if total <= 0.0 {
            return Err(GioError::invalid("sample_weight", "must not all be 0"));
        }
        let s: Vec<f64> = s.iter().map(|w| w / total).collect();
        let total = 1.0;
        let mut centre = vec![0.0; dim];
        for (row, &w) in x.chunks_exact(dim).zip(&s) {
            centre.iter_mut().zip(row).for_each(|(c, v)| *c += w * v);
        }
        centre.iter_mut().for_each(|c| *c /= total);
        for row in x.chunks_exact_mut(dim) {
            row.iter_mut().zip(&centre).for_each(|(v, c)| *v -= c);
        }
        Ok(Problem {
            x,
            y,
            s,
            centre,
            dim,
        })
    }

    fn rows(&self) -> Rows<'_, f64> {
        Rows::new("rows", &self.x, self.dim).expect("whole rows")
    }
}

/// Fits logit(x) = w·x + b (see the module docs).
pub fn fit_logistic<P: Element, N: Element>(
    positives: Rows<'_, P>,
    negatives: Rows<'_, N>,
    weights: Option<&[f64]>,
    options: LogisticOptions,
) -> Result<LogisticFit, GioError> {
    crate::params::finite("l2", options.l2, Some(0.0), None)?;
    let p = Problem::new(positives, negatives, weights)?;
    let d = p.dim;
    // theta = (w, b) about the centre.
    let mut theta = vec![0.0f64; d + 1];
    let mut current = objective(&p, &theta, options.l2);
    let (mut iterations, mut converged) = (0, false);
    while iterations < options.max_iter {
        let (grad, curvature) = gradient_and_weights(&p, &theta, options.l2);
        let hessian = hessian(&p, &curvature, options.l2);
        // The jitter follows the Hessian's scale: at values near 1e30 an absolute 1e-12 is below
        // the Gram's rounding and a pivot comes out negative; on unit-scale data it stays 1e-12.
        let scale = (0..=d)
            .map(|i| hessian[i * (d + 1) + i])
            .fold(1.0, f64::max);
        let step = Cholesky::factor("hessian", &hessian, d + 1, 1e-12 * scale)?.solve(&grad);
        iterations += 1;
        let Some((trial, value)) = halved_step(&p, &theta, &step, current, options.l2) else {
            converged = true;
            break;
        };
        let decrease = current - value;
        (theta, current) = (trial, value);
        if decrease < options.tolerance {
            converged = true;
            break;
        }
    }
    let w = theta[..d].to_vec();
    let bias = theta[d] - dot(&w, &p.centre);
    Ok(LogisticFit {
        loss: current,
        w,
        bias,
        iterations,
        converged,
    })
}

/// θ − t·step for the first t in 1, ½, ¼, … (> 1e-8) that does not increase the objective.
fn halved_step(
    p: &Problem,
    theta: &[f64],
    step: &[f64],
    current: f64,
    l2: f64,
) -> Option<(Vec<f64>, f64)> {
    let mut t = 1.0;
    while t > 1e-8 {
        let trial: Vec<f64> = theta.iter().zip(step).map(|(a, s)| a - t * s).collect();
        let value = objective(p, &trial, l2);
        if value <= current {
            return Some((trial, value));
        }
        t /= 2.0;
    }
    None
}

fn margins(p: &Problem, theta: &[f64]) -> Vec<f64> {
    let d = p.dim;
    p.x.chunks_exact(d)
        .map(|row| dot(row, &theta[..d]) + theta[d])
        .collect()
}

fn objective(p: &Problem, theta: &[f64], l2: f64) -> f64 {
    let d = p.dim;
    let data: f64 = margins(p, theta)
        .iter()
        .zip(p.y.iter().zip(&p.s))
        .map(|(m, (y, s))| s * softplus(-y * m))
        .sum();
    data + 0.5 * l2 * dot(&theta[..d], &theta[..d])
}

/// The gradient in (w, b) and the IRLS weights s_i·p_i(1 − p_i).
fn gradient_and_weights(p: &Problem, theta: &[f64], l2: f64) -> (Vec<f64>, Vec<f64>) {
    let d = p.dim;
    let mut grad = vec![0.0f64; d + 1];
    let mut curvature = Vec::with_capacity(p.y.len());
    for ((row, m), (y, s)) in
        p.x.chunks_exact(d)
            .zip(margins(p, theta))
            .zip(p.y.iter().zip(&p.s))
    {
        let prob = sigmoid(m);
        // d/dm of softplus(−y·m) = −y·σ(−y·m); with y ∈ {±1}: prob − (y + 1)/2.
        let residual = s * (prob - (y + 1.0) / 2.0);
        grad[..d]
            .iter_mut()
            .zip(row)
            .for_each(|(g, v)| *g += residual * v);
        grad[d] += residual;
        curvature.push(s * prob * (1.0 - prob));
    }
    grad[..d]
        .iter_mut()
        .zip(&theta[..d])
        .for_each(|(g, t)| *g += l2 * t);
    (grad, curvature)
}

/// [XᵀVX + λI, XᵀV1; 1ᵀVX, 1ᵀV1] for the centred rows X and V = diag(curvature).
fn hessian(p: &Problem, curvature: &[f64], l2: f64) -> Vec<f64> {
    let d = p.dim;
    let gram = weighted_scatter(p.rows(), curvature, &vec![0.0; d]);
    let mut h = vec![0.0f64; (d + 1) * (d + 1)];
    for i in 0..d {
        h[i * (d + 1)..i * (d + 1) + d].copy_from_slice(&gram[i * d..(i + 1) * d]);
        h[i * (d + 1) + i] += l2;
    }
    let mut cross = vec![0.0f64; d];
    for (row, &v) in p.x.chunks_exact(d).zip(curvature) {
        cross.iter_mut().zip(row).for_each(|(c, x)| *c += v * x);
    }
    for i in 0..d {
        h[i * (d + 1) + d] = cross[i];
        h[d * (d + 1) + i] = cross[i];
    }
    // A tiny floor keeps the intercept's pivot positive when every probability saturates.
    h[d * (d + 1) + d] = curvature.iter().sum::<f64>().max(1e-300);
    h
}
