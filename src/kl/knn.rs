//! The unaveraged (Wang–Kulkarni–Verdú) k-NN KL estimator, which the greedy method minimises:
//!
//! KL_k(X ‖ W) = d/n Σ_i log(ν_k(i) / ρ_k(i)) + log(m / (n − 1))
//!
//! with ν_k(i) the distance from target row x_i to its k-th nearest row of W (m = |W| rows),
//! ρ_k(i) the distance to its k-th nearest other target row, squared distances clipped to
//! [1e-10, 1e20] as everywhere in gio_rs (so every log is finite, no ε needed).
//!
//! Unlike the averaged estimator, this depends on which rows are selected: a row helps only
//! target rows whose k-th neighbour it displaces.
//!
//! How a greedy loop keeps it tractable: the log squared distances of every pool row to every
//! target row are computed once (`DistanceTable`, an M × n table of f64, O(M·n·d)); each target
//! row keeps its k smallest log distances to the selection, sorted (`Neighbours`); a candidate is
//! scored in O(n) from its table row (`score`) and accepting it updates the lists in O(n·k).
//!
//! Fewer than k selected rows: ν_k is undefined, so the estimate is NaN. A step then uses the
//! same estimator at the largest rank the new selection supports, r = |W ∪ {c}|: it minimises
//! Σ_i log ν_r(i), where ν_r(i) is the distance to the farthest selected row (the first row is the
//! one with the smallest sum of log distances to the target). From |W ∪ {c}| = k on, r = k.

use super::validate_target;
use crate::distance::{clip_sq, kth_neighbour_sq, sq_dist};
use crate::error::GioError;
use crate::parallel::{map_chunks_mut, map_row_chunks, num_threads, rows_per_chunk};
use crate::rows::{Element, Rows};
use crate::simd::sq_dists;

/// Target rows whose data stays in cache while a block of pool rows is measured against them.
const TARGET_BLOCK: usize = 64;

/// log(clip(‖a − b‖²)), the quantity the table and the per-target lists hold.
#[inline]
fn log_sq<T: Element>(a: &[T], b: &[T]) -> f64 {
    clip_sq(sq_dist(a, b)).ln()
}

/// The unaveraged k-NN estimate KL_k(X ‖ W) (module docs), by brute force: exact differences,
/// O(n·m·d). NaN when W has fewer than k rows. Requires 1 ≤ k ≤ n − 1.
pub fn knn_kl_divergence<T: Element>(
    x: Rows<'_, T>,
    w: Rows<'_, T>,
    k: usize,
) -> Result<f64, GioError> {
    validate_target(&x, k)?;
    if w.dim() != x.dim() {
        return Err(GioError::invalid(
            "y",
            format!("has {} columns but x has {}", w.dim(), x.dim()),
        ));
    }
    if w.len() < k {
        return Ok(f64::NAN);
    }
    let per_chunk = map_row_chunks(x.len(), w.len() * x.dim(), |start, end| {
        let mut row = Vec::with_capacity(w.len());
        (start..end)
            .map(|i| {
                row.clear();
                row.extend((0..w.len()).map(|j| log_sq(x.row(i), w.row(j))));
                *row.select_nth_unstable_by(k - 1, f64::total_cmp).1
            })
            .sum::<f64>()
    });
    let nu_sum: f64 = per_chunk.iter().sum();
    let rho_sum = log_rho_sum(x, k);
    Ok(estimate(x.len(), x.dim(), w.len(), nu_sum, rho_sum))
}

/// Σ_i log(ρ_k(i)²).
pub(crate) fn log_rho_sum<T: Element>(x: Rows<'_, T>, k: usize) -> f64 {
    kth_neighbour_sq(x, k).iter().map(|s| s.ln()).sum()
}

/// d/n · ½(Σ log ν² − Σ log ρ²) + log(m/(n − 1)).
pub(crate) fn estimate(
    n: usize,
    dim: usize,
    m: usize,
    log_nu_sq_sum: f64,
    log_rho_sq_sum: f64,
) -> f64 {
    dim as f64 / (2.0 * n as f64) * (log_nu_sq_sum - log_rho_sq_sum)
        + (m as f64 / (n - 1) as f64).ln()
}

/// log(clip(‖x_i − g_c‖²)) for every pool row c (row c of the table) and target row i.
pub(crate) struct DistanceTable {
    /// Target rows (the length of a table row).
    pub(crate) n: usize,
    logs: Vec<f64>,
}

impl DistanceTable {
    /// The table of `train` against target `x`, refused when it would take more than
    /// `max_bytes`; `poll` is called between batches of pool rows (its error stops the build).
    pub(crate) fn build<T: Element>(
        train: Rows<'_, T>,
        x: Rows<'_, T>,
        max_bytes: usize,
        poll: &mut dyn FnMut() -> Result<(), GioError>,
    ) -> Result<Self, GioError> {
        let (m, n, dim) = (train.len(), x.len(), x.dim());
        let cells = m.checked_mul(n);
        let bytes = cells.and_then(|c| c.checked_mul(std::mem::size_of::<f64>()));
        let too_big = |what: String| {
            GioError::invalid(
                "train",
                format!(
                    "method='greedy' keeps a table of {m} pool rows × {n} target rows of float64 \
                     log-distances ({what}); quantise first (n_clusters) or raise greedy_max_bytes"
                ),
            )
        };
        let (cells, bytes) = match (cells, bytes) {
            (Some(c), Some(b)) if b <= max_bytes => (c, b),
            (_, b) => {
                return Err(too_big(match b {
                    Some(b) => format!("{b} bytes, more than greedy_max_bytes = {max_bytes}"),
                    None => "more bytes than memory can address".into(),
                }))
            }
        };
        let mut logs = Vec::new();
        logs.try_reserve_exact(cells)
            .map_err(|_| too_big(format!("{bytes} bytes could not be allocated")))?;
        logs.resize(cells, 0.0);
        // Batches of pool rows between checks for Ctrl-C; every value is computed on its own, so
        // the table is the same for any thread count.
        let per_chunk = rows_per_chunk(n * dim);
        let per_batch = per_chunk * num_threads().max(1) * 4;
        for (b, batch) in logs.chunks_mut(per_batch * n.max(1)).enumerate() {
            let first = b * per_batch;
            map_chunks_mut(batch.len() * dim, batch, per_chunk * n, |(c, out)| {
                fill_rows(train, x, first + c * per_chunk, out)
            });
            poll()?;
        }
        Ok(DistanceTable { n, logs })
    }

    #[inline]
    pub(crate) fn row(&self, c: usize) -> &[f64] {
        &self.logs[c * self.n..(c + 1) * self.n]
    }
}

/// Fills `out` (whole table rows) with the log distances of pool rows `start..` to every
/// target row, a block of target rows at a time so that they stay in cache.
fn fill_rows<T: Element>(train: Rows<'_, T>, x: Rows<'_, T>, start: usize, out: &mut [f64]) {
    let n = x.len();
    let rows = out.len() / n;
    for i0 in (0..n).step_by(TARGET_BLOCK) {
        let i1 = (i0 + TARGET_BLOCK).min(n);
        let block = x.slice(i0, i1);
        for r in 0..rows {
            let out = &mut out[r * n + i0..r * n + i1];
            sq_dists(train.row(start + r), block.data(), x.dim(), out);
            out.iter_mut().for_each(|s| *s = clip_sq(*s).ln());
        }
    }
}

/// Per target row, its k smallest log squared distances to the selection, ascending, padded
/// with +inf while the selection is smaller than k.
pub(crate) struct Neighbours {
    k: usize,
    /// Rows in the selection.
    pub(crate) size: usize,
    lists: Vec<f64>,
}

impl Neighbours {
    pub(crate) fn new(n: usize, k: usize) -> Self {
        Neighbours {
            k,
            size: 0,
            lists: vec![f64::INFINITY; n * k],
        }
    }

    /// Adds one selected row given its log distance to every target row.
    pub(crate) fn insert(&mut self, logs: &[f64]) {
        for (list, &v) in self.lists.chunks_exact_mut(self.k).zip(logs) {
            insert_sorted(list, v);
        }
        self.size += 1;
    }

    /// Adds the rows of `w` (the initial selection), computing their distances on the fly.
    pub(crate) fn insert_rows<T: Element>(&mut self, x: Rows<'_, T>, w: Rows<'_, T>) {
        if w.is_empty() {
            return;
        }
        let k = self.k;
        let per = rows_per_chunk(w.len() * x.dim());
        let work = x.len() * w.len() * x.dim();
        map_chunks_mut(work, &mut self.lists, per * k, |(c, lists)| {
            for (r, list) in lists.chunks_exact_mut(k).enumerate() {
                let xi = x.row(c * per + r);
                for j in 0..w.len() {
                    insert_sorted(list, log_sq(xi, w.row(j)));
                }
            }
        });
        self.size += w.len();
    }

    /// Σ_i log ν_k(i)² (only meaningful once the selection has k rows).
    pub(crate) fn kth_sum(&self) -> f64 {
        self.lists.chunks_exact(self.k).map(|l| l[self.k - 1]).sum()
    }

    /// What a step needs per target row to score a candidate with log distance v to it:
    /// its score term is min(cap, max(lower_i, v) − base_i).
    ///
    /// - Selection of s ≥ k rows: the new k-th distance is min(q_k, max(q_{k−1}, v)); the term
    ///   is its change, lower = q_{k−1} (−inf for k = 1), base = q_k, cap = 0.
    /// - s < k rows: the rank r = s + 1 distance of the new selection is max(q_s, v) (the
    ///   farthest row); the term is that value: lower = q_s (−inf for s = 0), base = 0, cap = +inf.
    pub(crate) fn step_terms(&self, lower: &mut Vec<f64>, base: &mut Vec<f64>) -> f64 {
        let (k, s) = (self.k, self.size);
        lower.clear();
        base.clear();
        let full = s >= k;
        let below = if full { k - 1 } else { s };
        for list in self.lists.chunks_exact(k) {
            lower.push(if below == 0 {
                f64::NEG_INFINITY
            } else {
                list[below - 1]
            });
            base.push(if full { list[k - 1] } else { 0.0 });
        }
        if full {
            0.0
        } else {
            f64::INFINITY
        }
    }
}

/// Inserts `v` into the ascending `list`, dropping its largest value.
#[inline]
fn insert_sorted(list: &mut [f64], v: f64) {
    let k = list.len();
    if v >= list[k - 1] {
        return;
    }
    let mut p = k - 1;
    while p > 0 && list[p - 1] > v {
        list[p] = list[p - 1];
        p -= 1;
    }
    list[p] = v;
}

/// Σ_i min(cap, max(lower_i, row_i) − base_i), summed in 8 fixed lanes then a fixed tree, so the
/// result does not depend on how the compiler vectorises it.
#[inline]
pub(crate) fn score(row: &[f64], lower: &[f64], base: &[f64], cap: f64) -> f64 {
    let term = |v: f64, lo: f64, b: f64| {
        let hi = if v > lo { v } else { lo };
        let t = hi - b;
        if t < cap {
            t
        } else {
            cap
        }
    };
    let mut lanes = [0.0f64; 8];
    let full = row.len() / 8 * 8;
    for ((r, l), b) in row[..full]
        .chunks_exact(8)
        .zip(lower[..full].chunks_exact(8))
        .zip(base[..full].chunks_exact(8))
    {
        for j in 0..8 {
            lanes[j] += term(r[j], l[j], b[j]);
        }
    }
    let mut tail = 0.0;
    for i in full..row.len() {
        tail += term(row[i], lower[i], base[i]);
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        + tail
}
