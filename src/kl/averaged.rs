//! The averaged k-NN KL estimator of the reference (docs/reference.md, "The estimator"), kept as an
//! incremental state: the X-to-X term is computed once, each added row costs O(n·d).
//!
//! KL(X ‖ W) = d/(n·m') Σ_i Σ_j log(ν(x_i, w_j) + ε) − d/n Σ_i log(ρ_k(i) + ε)
//!             + 1/m Σ_{j=1..m} log(k·m / (j·(n − 1)))
//! where m' = m, or m − 1 with `discard_nearest_for_xy` (each target row then drops its nearest w).

use super::log_sum::LogRootSum;
use super::{validate_target, GradientWork, KlParams};
use crate::distance::{
    clip_sq, expansion_error_factor, kth_neighbour_sq, kth_neighbour_sq_symmetric, row_norms,
    sq_dist,
};
use crate::error::GioError;
use crate::parallel::{map_row_chunks_aligned, map_row_chunks_filling};
use crate::rows::{Element, Rows};
use crate::simd::{dot, sq_dists, RowPanels, ROW_PANEL};

pub use super::log_sum::log_root_sum;

/// `add_rows` widens the selection to f64 about this many values at a time (each value once,
/// in bounded memory)...
const ADD_WIDEN_VALUES: usize = 1 << 19;
/// ...forms target × selection distances in Gram tiles of this many rows of each (a multiple of
/// the log sum's 8 lanes, so every block feeds it whole groups)...
const ADD_TARGET_BLOCK: usize = 16;
const ADD_SELECTION_BLOCK: usize = 32;
/// ...and recomputes pairs closer than this share of ‖x‖² + ‖w‖² from exact differences.
const EXACT_SHARE: f64 = 0.1;

/// `1/m Σ_{j=1..m} log(k·m / (j·(n−1)))`, the estimator's size term, summed as the reference does.
pub fn size_term(k: usize, m: usize, n: usize) -> f64 {
    let num = (k * m) as f64;
    let total: f64 = (1..=m).map(|j| (num / ((j * (n - 1)) as f64)).ln()).sum();
    total / m as f64
}

/// Per-row distances of one candidate row to every target row, kept so that accepting the
/// candidate does not recompute them.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    /// Clipped squared distance from each target row to the candidate.
    sq: Vec<f64>,
    /// Σ_i log(sqrt(sq_i) + ε).
    log_sum: f64,
    /// The KL estimate of the selection with the candidate added.
    pub kl: f64,
}

/// The estimator's state for a target X and a growing selection W.
pub struct KlState<'a, T: Element> {
    pub(super) x: Rows<'a, T>,
    pub(super) params: KlParams,
    /// Σ_i log(ρ_k(i) + ε), fixed by X.
    xx_log_sum: f64,
    /// |W|.
    pub(super) m: usize,
    /// Σ_i Σ_j log(ν(x_i, w_j) + ε) over the selection.
    cross_log_sum: f64,
    /// Per target row: the smallest clipped squared distance to W (only with discard).
    pub(super) nearest_sq: Vec<f64>,
    /// Per target row: ‖x_i‖², for the gradient's Gram-form distances.
    pub(super) x_norms: Vec<f64>,
    /// X packed in panels of 8 rows, for the Gram-form dots of the gradient and `add_rows`.
    pub(super) panels: RowPanels<T>,
}

impl<'a, T: Element> KlState<'a, T> {
    /// Builds the state for target `x` and an initial selection `w` (may be empty).
    pub fn new(x: Rows<'a, T>, w: Rows<'_, T>, params: KlParams) -> Result<Self, GioError> {
        Self::with_kth_search(x, w, params, kth_neighbour_sq)
    }

    /// `new`, with the X-to-X k-th neighbour distances from `kth` (`kth_neighbour_sq` or its
    /// symmetric form: the same values).
    fn with_kth_search(
        x: Rows<'a, T>,
        w: Rows<'_, T>,
        params: KlParams,
        kth: fn(Rows<'a, T>, usize) -> Vec<f64>,
    ) -> Result<Self, GioError> {
        validate_target(&x, params.k)?;
        let mut state = Self::without_target_term(x, w, params)?;
        state.xx_log_sum = kth(x, params.k)
            .iter()
            .map(|&s| (s.sqrt() + params.eps).ln())
            .sum();
        Ok(state)
    }

    /// A state for gradients only: the X-to-X term (the one O(n²·d) part) is not computed and
    /// `value` is NaN. `k` is not used.
    pub fn without_target_term(
        x: Rows<'a, T>,
        w: Rows<'_, T>,
        params: KlParams,
    ) -> Result<Self, GioError> {
        if x.is_empty() {
            return Err(GioError::invalid("X", "the target needs at least one row"));
        }
        // A negative or non-finite ε makes every log NaN or infinite: refuse it.
        crate::params::finite("eps", params.eps, Some(0.0), None)?;
        if w.dim() != x.dim() {
            return Err(GioError::invalid(
                "W",
                format!("has {} columns but the target has {}", w.dim(), x.dim()),
            ));
        }
        let mut state = KlState {
            x,
            params,
            xx_log_sum: f64::NAN,
            m: 0,
            cross_log_sum: 0.0,
            nearest_sq: if params.discard_nearest_for_xy {
                vec![f64::INFINITY; x.len()]
            } else {
                Vec::new()
            },
            x_norms: row_norms(x),
            panels: RowPanels::new(x.data(), x.dim()),
        };
        state.add_rows(w);
        Ok(state)
    }

    pub fn params(&self) -> KlParams {
        self.params
    }

    pub fn target(&self) -> Rows<'a, T> {
        self.x
    }

    /// Rows in the selection.
    pub fn selection_size(&self) -> usize {
        self.m
    }

    /// Per target row, the smallest clipped squared distance to the selection (discard only).
    pub fn nearest_sq(&self) -> &[f64] {
        &self.nearest_sq
    }

    /// Adds every row of `w` to the selection: per part of `w` widened to f64, one parallel pass
    /// over the target rows.
    pub fn add_rows(&mut self, w: Rows<'_, T>) {
        if w.is_empty() {
            return;
        }
        let dim = self.x.dim();
        let per =
            (ADD_WIDEN_VALUES / dim.max(1)).div_ceil(ADD_SELECTION_BLOCK) * ADD_SELECTION_BLOCK;
        let discard = self.params.discard_nearest_for_xy;
        for j0 in (0..w.len()).step_by(per) {
            let part = w.slice(j0, (j0 + per).min(w.len()));
            let sums = self.cross_part(part);
            for (i, (log_sum, nearest)) in sums.into_iter().enumerate() {
                self.cross_log_sum += log_sum;
                if discard {
                    self.nearest_sq[i] = self.nearest_sq[i].min(nearest);
                }
            }
        }
        self.m += w.len();
    }

    /// Per target row: (Σ_j log(ν(x_i, w_j) + ε), min_j clipped squared distance) over the rows
    /// of `w`. Distances come from Gram tiles of X's panels and `w` widened to f64; pairs closer
    /// than `EXACT_SHARE` of their norms (where the Gram form cancels) are recomputed from exact
    /// differences, the others err by at most (d+4)·ε/EXACT_SHARE relative (2e-12 at d = 768).
    fn cross_part(&self, w: Rows<'_, T>) -> Vec<(f64, f64)> {
        let (x, dim, eps) = (self.x, self.x.dim(), self.params.eps);
        let widened: Vec<f64> = w.data().iter().map(|v| v.to_f64()).collect();
        let w_norms: Vec<f64> = widened.chunks_exact(dim).map(|r| dot(r, r)).collect();
        let panels = &self.panels;
        let per_chunk: Vec<Vec<(f64, f64)>> =
            map_row_chunks_aligned(x.len(), dim, ROW_PANEL, |start, end| {
                let mut sums = vec![LogRootSum::EMPTY; end - start];
                let mut nearest = vec![f64::INFINITY; end - start];
                let target_block =
                    ADD_TARGET_BLOCK.min((end - start).div_ceil(ROW_PANEL) * ROW_PANEL);
                let mut gram = vec![0.0f64; target_block * ADD_SELECTION_BLOCK];
                let mut sq = [0.0f64; ADD_SELECTION_BLOCK];
                // Selection blocks outer: each stays in L2 while the chunk's panels pass over it.
                for j0 in (0..w.len()).step_by(ADD_SELECTION_BLOCK) {
                    let j1 = (j0 + ADD_SELECTION_BLOCK).min(w.len());
                    let cols = j1 - j0;
                    let w_block = &widened[j0 * dim..j1 * dim];
                    for i0 in (start..end).step_by(target_block) {
                        let i1 = (i0 + target_block).min(end);
                        let gram = &mut gram[..(i1 - i0).div_ceil(ROW_PANEL) * ROW_PANEL * cols];
                        panels.dots(i0, i1, w_block, gram);
                        for (i, gram_row) in (i0..i1).zip(gram.chunks_exact(cols)) {
                            let pair = PairRow {
                                xi: x.row(i),
                                xi_norm: self.x_norms[i],
                                w: w.slice(j0, j1),
                                w_norms: &w_norms[j0..j1],
                            };
                            let sq = &mut sq[..cols];
                            let near = pair.distances(gram_row, sq);
                            nearest[i - start] = nearest[i - start].min(near);
                            sums[i - start].add(sq, eps);
                        }
                    }
                }
                sums.iter().map(LogRootSum::value).zip(nearest).collect()
            });
        per_chunk.into_iter().flatten().collect()
    }

    /// The KL estimate of X against the current selection. NaN when the estimator is
    /// undefined (an empty selection, or one row with `discard_nearest_for_xy`).
    pub fn value(&self) -> f64 {
        self.value_with(self.m, self.cross_log_sum, |i| self.nearest_sq[i])
    }

    fn value_with(&self, m: usize, cross_log_sum: f64, nearest_sq: impl Fn(usize) -> f64) -> f64 {
        let n = self.x.len();
        let d = self.x.dim() as f64;
        let eps = self.params.eps;
        let (pairs_log_sum, pairs) = if self.params.discard_nearest_for_xy {
            let dropped: f64 = (0..n).map(|i| (nearest_sq(i).sqrt() + eps).ln()).sum();
            (cross_log_sum - dropped, n * m.saturating_sub(1))
        } else {
            (cross_log_sum, n * m)
        };
        if pairs == 0 {
            return f64::NAN;
        }
        d * pairs_log_sum / pairs as f64 - d * self.xx_log_sum / n as f64
            + size_term(self.params.k, m, n)
    }

    /// Evaluates the KL with `row` added, without adding it; reuses `cand`'s buffer.
    pub fn evaluate(&self, row: &[T], cand: &mut Candidate) {
        let x = self.x;
        let eps = self.params.eps;
        cand.sq.resize(x.len(), 0.0);
        // Each chunk fills its rows of `sq` and returns its log sum; sums combine in chunk order.
        let partial = map_row_chunks_filling(&mut cand.sq, x.dim(), |start, sq| {
            sq_dists(row, x.slice(start, start + sq.len()).data(), x.dim(), sq);
            sq.iter_mut().for_each(|s| *s = clip_sq(*s));
            log_root_sum(sq, eps)
        });
        cand.log_sum = partial.iter().sum();
        let cross = self.cross_log_sum + cand.log_sum;
        let sq = &cand.sq;
        cand.kl = self.value_with(self.m + 1, cross, |i| {
            if self.params.discard_nearest_for_xy {
                self.nearest_sq[i].min(sq[i])
            } else {
                0.0
            }
        });
    }

    /// Adds the evaluated candidate to the selection.
    pub fn accept(&mut self, cand: &Candidate) {
        self.cross_log_sum += cand.log_sum;
        if self.params.discard_nearest_for_xy {
            for (nearest, &s) in self.nearest_sq.iter_mut().zip(&cand.sq) {
                *nearest = nearest.min(s);
            }
        }
        self.m += 1;
    }
}

/// One target row against a block of selection rows, for `KlState::cross_part`.
struct PairRow<'r, T> {
    xi: &'r [T],
    xi_norm: f64,
    w: Rows<'r, T>,
    w_norms: &'r [f64],
}

impl<T: Element> PairRow<'_, T> {
    /// Clipped squared distances into `sq` from the Gram row (x_i · w_j), the pairs where the
    /// Gram form cancels recomputed exactly; returns the smallest.
    #[inline]
    fn distances(&self, gram_row: &[f64], sq: &mut [f64]) -> f64 {
        let gamma = expansion_error_factor(self.xi.len());
        let mut exact = [false; ADD_SELECTION_BLOCK];
        let mut any_exact = false;
        for (((&g, &wn), s), e) in gram_row
            .iter()
            .zip(self.w_norms)
            .zip(sq.iter_mut())
            .zip(&mut exact)
        {
            let scale = self.xi_norm + wn;
            let approx = (scale - 2.0 * g).max(0.0);
            *e = !(approx >= EXACT_SHARE * scale && (gamma * scale).is_finite());
            any_exact |= *e;
            *s = approx;
        }
        if any_exact {
            for (j, s) in sq.iter_mut().enumerate().filter(|&(j, _)| exact[j]) {
                *s = sq_dist(self.xi, self.w.row(j));
            }
        }
        let mut nearest = f64::INFINITY;
        for s in sq.iter_mut() {
            *s = clip_sq(*s);
            nearest = nearest.min(*s);
        }
        nearest
    }
}

pub fn kl_divergence<T: Element>(
    x: Rows<'_, T>,
    y: Rows<'_, T>,
    params: KlParams,
) -> Result<f64, GioError> {
    if y.is_empty() {
        return Err(GioError::invalid("y", "needs at least one row"));
    }
    if y.dim() != x.dim() {
        return Err(GioError::invalid(
            "y",
            format!("has {} columns but X has {}", y.dim(), x.dim()),
        ));
    }
    if params.discard_nearest_for_xy && y.len() < 2 {
        return Err(GioError::invalid(
            "y",
            "needs at least 2 rows with discard_nearest_for_xy=True (each target row drops its nearest y)",
        ));
    }
    // One call, memory for n × n float32 scores (up to 32 MiB) to halve the X-to-X tiles.
    let mut state = KlState::with_kth_search(x, y.slice(0, 0), params, kth_neighbour_sq_symmetric)?;
    state.add_rows(y);
    Ok(state.value())
}

/// Gradient of KL(X ‖ W ∪ {v}) with respect to v.
pub fn kl_gradient<T: Element>(
    x: Rows<'_, T>,
    w: Rows<'_, T>,
    v: &[f64],
    discard_nearest_for_xy: bool,
) -> Result<Vec<f64>, GioError> {
    if v.len() != x.dim() {
        return Err(GioError::invalid(
            "v",
            format!(
                "has {} values but the target has {} columns",
                v.len(),
                x.dim()
            ),
        ));
    }
    if w.is_empty() && discard_nearest_for_xy {
        return Err(GioError::invalid(
            "W",
            "needs at least one row with discard_nearest_for_xy=True",
        ));
    }
    let state = KlState::without_target_term(x, w, KlParams::new(1, discard_nearest_for_xy))?;
    let mut out = vec![0.0; v.len()];
    state.gradient(v, &mut GradientWork::default(), &mut out);
    Ok(out)
}
