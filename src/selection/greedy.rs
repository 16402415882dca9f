//! Exact greedy selection on the unaveraged (Wang–Kulkarni–Verdú) k-NN KL estimator
//! (`crate::kl::knn`, where the estimator, its distance table and the per-target neighbour lists
//! live): each step adds the unused pool row that lowers the estimate most. A row helps only
//! target rows whose k-th neighbour it displaces, so the selection spreads over the target.
//! A step scores every unused pool row from its table row, in parallel.
//!
//! Saturation: once the selection holds k rows and no unused row changes any target row's k-th
//! neighbour distance, every candidate ties (score 0). Such a step takes the unused row with the
//! largest Gaussian closed-form density ratio of the pool against the target
//! (`crate::ratio::gaussian`, λ = tr(S_p)/d; computed once, at the first such step), ties to the
//! lower index: the rows most like the target, not the lowest indices.

use std::ops::ControlFlow;

use super::{check_columns, LoopHost, Method, Selection, StopReason, StopRule, ValidSelectParams};
use crate::error::GioError;
use crate::kl::knn::{estimate, log_rho_sum, score, DistanceTable, Neighbours};
use crate::kl::validate_target;
use crate::parallel::map_row_chunks;
use crate::ratio::gaussian::{covariance_scale, direction};
use crate::ratio::moments::MomentsAccumulator;
use crate::ratio::score::linear_scores;
use crate::rows::{Element, Rows};

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

/// Pool rows by the Gaussian closed-form log ratio w·x of the pool against the target (w =
/// (S_p + λI)⁻¹(μ_t − μ_p), λ = tr(S_p)/d), largest first, ties to the lowest index. Where
/// float64 cannot hold the covariance (values near its range), w = μ_t − μ_p (the limit of a
/// large ridge) instead of an error.
fn ratio_order<T: Element>(train: Rows<'_, T>, x: Rows<'_, T>) -> Result<Vec<usize>, GioError> {
    let target_mean = x.column_means();
    let mut pool = MomentsAccumulator::new(train.dim())?; // shifted by the pool's first block
    pool.add(train)?;
    let moments = pool.finish()?;
    let w = direction(&moments, &target_mean, covariance_scale(&moments))
        .ok()
        .map(|dir| dir.w)
        .filter(|w| w.iter().all(|v| v.is_finite()))
        .unwrap_or_else(|| {
            let diff = target_mean.iter().zip(&moments.mean);
            diff.map(|(t, p)| t - p).collect()
        });
    let scores = linear_scores(train, &w, 0.0);
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    Ok(order)
}

/// Runs the exact greedy selection of rows of `train` for target `x`, starting from `w0` (may be
/// empty). Returns the same `Selection` as the gradient loop; fields about the descent
/// (`descent_iters`, `v_opts`, `v`) are empty and `scale_factor` is NaN.
///
/// After saturation (see the module docs) rows come in `ratio_order`.
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
    let table = DistanceTable::build(train, x, params.greedy_max_bytes, &mut || host.poll())?;
    let mut run = Run::start(&table, x, w0, params, train.len(), host)?;
    while run.step(train, x, host)?.is_continue() {}
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
    /// From the first saturated step on: the pool rows in `ratio_order`, and the position
    /// before which every row is used.
    ratio: Option<(Vec<usize>, usize)>,
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
            ratio: None,
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

    /// The step's candidate and its score: the best unused row, or when every candidate ties
    /// with score 0 (saturated) the first unused row in `ratio_order`. None: the pool is
    /// exhausted.
    fn candidate<T: Element>(
        &mut self,
        train: Rows<'_, T>,
        x: Rows<'_, T>,
        full: bool,
        cap: f64,
    ) -> Result<Option<(usize, f64)>, GioError> {
        let best = best_candidate(self.table, &self.out.used, &self.lower, &self.base, cap);
        let Some((_, score)) = best else {
            return Ok(None);
        };
        // Full selection: every score is <= 0, so a best of 0 means all tie.
        if !(full && score >= 0.0) {
            return Ok(best);
        }
        if self.ratio.is_none() {
            self.ratio = Some((ratio_order(train, x)?, 0));
        }
        let (order, next) = self.ratio.as_mut().expect("set above");
        while self.out.used[order[*next]] {
            *next += 1; // rows before `next` are all used: an unused row remains (best is Some)
        }
        Ok(Some((order[*next], score)))
    }

    /// One step: the best unused pool row, the stop test, the row accepted or the run ended.
    fn step<T: Element>(
        &mut self,
        train: Rows<'_, T>,
        x: Rows<'_, T>,
        host: &mut dyn LoopHost,
    ) -> Result<ControlFlow<()>, GioError> {
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
        let Some((row, score)) = self.candidate(train, x, full, cap)? else {
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
