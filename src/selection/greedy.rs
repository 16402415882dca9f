//! Exact greedy selection on the unaveraged (Wang–Kulkarni–Verdú) k-NN KL estimator:
//!
//! KL_k(X ‖ W) = d/n Σ_i log(ν_k(i) / ρ_k(i)) + log(m / (n − 1))
//!
//! with ν_k(i) the distance from target row x_i to its k-th nearest row of W (m = |W| rows),
//! ρ_k(i) the distance to its k-th nearest other target row, squared distances clipped to
//! [1e-10, 1e20] as everywhere in gio_rs (so every log is finite, no ε needed).
//!
//! Each step adds the unused pool row that lowers the estimate most. Unlike the averaged
//! estimator, this depends on which rows are selected: a row helps only target rows whose k-th
//! neighbour it displaces, so the selection spreads over the target.
//!
//! How it stays tractable: the log squared distances of every pool row to every target row are
//! computed once (an M × n table of f64, O(M·n·d)); each target row keeps its k smallest log
//! distances to the selection, sorted; a step scores every unused pool row in O(n) from its
//! table row (in parallel) and updates the per-target lists in O(n·k).
//!
//! Fewer than k selected rows: ν_k is undefined, so the estimate is NaN. The choice then uses the
//! same estimator at the largest rank the new selection supports, r = |W ∪ {c}|: it minimises
//! Σ_i log ν_r(i), where ν_r(i) is the distance to the farthest selected row (the first row is the
//! one with the smallest sum of log distances to the target). From |W ∪ {c}| = k on, r = k.

use std::ops::ControlFlow;

use super::{check_columns, LoopHost, Method, Selection, StopReason, StopRule, ValidSelectParams};
use crate::distance::{clip_sq, kth_neighbour_sq, sq_dist};
use crate::error::GioError;
use crate::kl::validate_target;
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
fn log_rho_sum<T: Element>(x: Rows<'_, T>, k: usize) -> f64 {
    kth_neighbour_sq(x, k).iter().map(|s| s.ln()).sum()
}

/// d/n · ½(Σ log ν² − Σ log ρ²) + log(m/(n − 1)).
fn estimate(n: usize, dim: usize, m: usize, log_nu_sq_sum: f64, log_rho_sq_sum: f64) -> f64 {
    dim as f64 / (2.0 * n as f64) * (log_nu_sq_sum - log_rho_sq_sum)
        + (m as f64 / (n - 1) as f64).ln()
}

/// log(clip(‖x_i − g_c‖²)) for every pool row c (row c of the table) and target row i.
struct DistanceTable {
    n: usize,
    logs: Vec<f64>,
}

impl DistanceTable {
    fn build<T: Element>(
        train: Rows<'_, T>,
        x: Rows<'_, T>,
        max_bytes: usize,
        host: &mut dyn LoopHost,
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
            host.poll()?;
        }
        Ok(DistanceTable { n, logs })
    }

    #[inline]
    fn row(&self, c: usize) -> &[f64] {
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
struct Neighbours {
    k: usize,
    size: usize,
    lists: Vec<f64>,
}

impl Neighbours {
    fn new(n: usize, k: usize) -> Self {
        Neighbours {
            k,
            size: 0,
            lists: vec![f64::INFINITY; n * k],
        }
    }

    /// Adds one selected row given its log distance to every target row.
    fn insert(&mut self, logs: &[f64]) {
        for (list, &v) in self.lists.chunks_exact_mut(self.k).zip(logs) {
            insert_sorted(list, v);
        }
        self.size += 1;
    }

    /// Adds the rows of `w` (the initial selection), computing their distances on the fly.
    fn insert_rows<T: Element>(&mut self, x: Rows<'_, T>, w: Rows<'_, T>) {
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
    fn kth_sum(&self) -> f64 {
        self.lists.chunks_exact(self.k).map(|l| l[self.k - 1]).sum()
    }

    /// What a step needs per target row to score a candidate with log distance v to it:
    /// its score term is min(cap, max(lower_i, v) − base_i).
    ///
    /// - Selection of s ≥ k rows: the new k-th distance is min(q_k, max(q_{k−1}, v)); the term
    ///   is its change, lower = q_{k−1} (−inf for k = 1), base = q_k, cap = 0.
    /// - s < k rows: the rank r = s + 1 distance of the new selection is max(q_s, v) (the
    ///   farthest row); the term is that value: lower = q_s (−inf for s = 0), base = 0, cap = +inf.
    fn step_terms(&self, lower: &mut Vec<f64>, base: &mut Vec<f64>) -> f64 {
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
fn score(row: &[f64], lower: &[f64], base: &[f64], cap: f64) -> f64 {
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

/// The unused pool row with the lowest score (ties → lowest index), and its score.
fn best_candidate(
    table: &DistanceTable,
    used: &[bool],
    lower: &[f64],
    base: &[f64],
    cap: f64,
) -> Option<(usize, f64)> {
    let per_chunk = map_row_chunks(used.len(), table.n, |start, end| {
        let mut best: Option<(usize, f64)> = None;
        for c in (start..end).filter(|&c| !used[c]) {
            let s = score(table.row(c), lower, base, cap);
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((c, s));
            }
        }
        best
    });
    // Chunks come in index order: a strict `<` keeps the lowest index on ties.
    per_chunk
        .into_iter()
        .flatten()
        .fold(None, |best: Option<(usize, f64)>, cand| match best {
            Some((_, b)) if cand.1 >= b => best,
            _ => Some(cand),
        })
}

/// Runs the exact greedy selection of rows of `train` for target `x`, starting from `w0` (may be
/// empty). Returns the same `Selection` as the gradient loop; fields about the descent
/// (`descent_iters`, `v_opts`, `v`) are empty and `scale_factor` is NaN.
///
/// Stop rules (checked in this order each step):
/// - `max_iter = N`: stop once N + 1 rows are accepted; `data_size`: once
///   int(max_data_size·M) + 1 are. Checked before a step, so no candidate is wasted.
/// - no unused pool row: `PoolExhausted`.
/// - after the best candidate is found, the stop rule on its KL against the previous one (the
///   starting KL first), with fixed semantics: `increase` stops on kl > prev; `min_difference`
///   on prev − kl < min_difference; `sequential_increase_tolerance` accepts up to
///   `max_sequential_increases` consecutive increases and stops on the next; the stopping
///   candidate is rejected. `min_kl` keeps the row whose KL is below `min_kl`, then stops. While
///   the selection is below k rows the KL is NaN, and every comparison with NaN is false: these
///   criteria cannot stop there.
pub fn greedy_select<T: Element>(
    train: Rows<'_, T>,
    x: Rows<'_, T>,
    w0: Rows<'_, T>,
    params: &ValidSelectParams,
    host: &mut dyn LoopHost,
) -> Result<Selection, GioError> {
    if params.method != Method::Greedy {
        return Err(GioError::invalid(
            "method",
            "greedy_select runs method='greedy'",
        ));
    }
    validate_target(&x, params.k)?;
    check_columns(train, x, w0)?;
    let table = DistanceTable::build(train, x, params.greedy_max_bytes, host)?;
    let mut run = Run::start(&table, x, w0, params, train.len(), host)?;
    while run.step(host)?.is_continue() {}
    Ok(run.out)
}

/// A greedy run in progress.
struct Run<'a> {
    params: &'a ValidSelectParams,
    table: &'a DistanceTable,
    neighbours: Neighbours,
    /// Σ_i log ρ_k(i)², the target's own term.
    rho_sum: f64,
    /// Target rows and columns.
    n: usize,
    dim: usize,
    stop: StopRule,
    out: Selection,
    prev: f64,
    /// Per target row, what scoring a candidate needs (see `Neighbours::step_terms`).
    lower: Vec<f64>,
    base: Vec<f64>,
}

impl<'a> Run<'a> {
    fn start<T: Element>(
        table: &'a DistanceTable,
        x: Rows<'_, T>,
        w0: Rows<'_, T>,
        params: &'a ValidSelectParams,
        n_train: usize,
        host: &mut dyn LoopHost,
    ) -> Result<Self, GioError> {
        let n = x.len();
        let mut neighbours = Neighbours::new(n, params.k);
        neighbours.insert_rows(x, w0);
        let mut run = Run {
            params,
            table,
            neighbours,
            rho_sum: log_rho_sum(x, params.k),
            n,
            dim: x.dim(),
            stop: StopRule::new(params, n_train),
            out: Selection::new(f64::NAN, f64::NAN, n_train),
            prev: f64::NAN,
            lower: Vec::with_capacity(n),
            base: Vec::with_capacity(n),
        };
        let kl_start = run.kl(run.neighbours.size, run.neighbours.kth_sum());
        (run.out.kl_start, run.prev) = (kl_start, kl_start);
        host.on_start(kl_start, f64::NAN)?;
        Ok(run)
    }

    /// The estimate for a selection of `size` rows with Σ_i log ν_k(i)² = `nu_sum` (NaN below k
    /// rows).
    fn kl(&self, size: usize, nu_sum: f64) -> f64 {
        if size >= self.params.k {
            estimate(self.n, self.dim, size, nu_sum, self.rho_sum)
        } else {
            f64::NAN
        }
    }

    /// One step: the best unused pool row, the stop test, the row accepted or the run ended.
    fn step(&mut self, host: &mut dyn LoopHost) -> Result<ControlFlow<()>, GioError> {
        let accepted_so_far = self.out.indices.len();
        if accepted_so_far > self.params.max_iter {
            self.out.stop_reason = StopReason::MaxIter;
            return Ok(ControlFlow::Break(()));
        }
        if self.stop.data_size_reached(accepted_so_far as i64) {
            self.out.stop_reason = StopReason::Criterion(self.stop.criterion());
            return Ok(ControlFlow::Break(()));
        }
        let full = self.neighbours.size >= self.params.k;
        let cap = self.neighbours.step_terms(&mut self.lower, &mut self.base);
        let best = best_candidate(self.table, &self.out.used, &self.lower, &self.base, cap);
        let Some((row, score)) = best else {
            self.out.stop_reason = StopReason::PoolExhausted;
            return Ok(ControlFlow::Break(()));
        };
        self.out.used[row] = true;
        // Full selection: the score is the change of Σ log ν_k²; below k rows the new sum itself.
        let nu_sum = if full {
            self.base.iter().sum::<f64>() + score
        } else {
            score
        };
        let kl = self.kl(self.neighbours.size + 1, nu_sum);
        self.out.candidate_kl.push(kl);

        let iteration = accepted_so_far as i64;
        let stop = self.stop.check(kl, self.prev, iteration, &self.out);
        let accept = !stop || self.stop.keeps_stopping_row();
        if accept {
            self.neighbours.insert(self.table.row(row));
            self.out.accept(row, kl);
            self.prev = kl;
        }
        host.on_candidate(&self.out.event(iteration, kl, accept, false))?;
        if stop {
            self.out.stop_reason = StopReason::Criterion(self.stop.criterion());
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }
}
