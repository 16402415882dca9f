//! k-NN target counts: for each query (pool) row, how many of its k nearest rows in a reference
//! set (the target rows, then background rows such as a seeded pool sample) are target rows.
//!
//! Self-exclusion by index mapping, as reference_ratio.knn_counts: `self_index[i]` is query i's
//! own row in the reference (targets 0..n_t, then background rows), or −1; that row is never
//! counted, so a pool row in the sample (or a target row scored leave-self-out) is not its own
//! neighbour. Exact duplicates of a query at other indices do count (they are other rows).
//! Distances are exact: candidates come from the Gram form ‖q‖² + ‖r‖² − 2q·r (`dot_block`),
//! with a rigorous error bound (`distance::expansion_error_factor`), and every reference row that
//! may be among the k nearest is recomputed by `sq_dist`. Ties go to the lower reference index
//! (targets first, then background rows in order). Parallel over fixed chunks of queries.

use crate::distance::{expansion_error_factor, row_norms};
use crate::error::GioError;
use crate::parallel::map_row_chunks;
use crate::rows::{Element, Rows};
use crate::simd::{dot_block, sq_dist};

/// Queries whose Gram rows against the reference are formed together.
const QUERY_BLOCK: usize = 32;

/// The reference set of a k-NN count: target rows, then background rows (e.g. a pool sample).
pub struct KnnReference<'a, U, V> {
    pub target: Rows<'a, U>,
    pub background: Rows<'a, V>,
}

/// For query i: the number of target rows among its `k` nearest reference rows, the reference
/// row `self_index[i]` excluded when that is >= 0 (see the module docs).
pub fn knn_target_counts<T: Element, U: Element, V: Element>(
    queries: Rows<'_, T>,
    reference: &KnnReference<'_, U, V>,
    k: usize,
    self_index: Option<&[i64]>,
) -> Result<Vec<u32>, GioError> {
    let (nt, nb) = (reference.target.len(), reference.background.len());
    let d = queries.dim();
    if reference.target.dim() != d || reference.background.dim() != d {
        return Err(GioError::invalid(
            "target",
            "target, background and queries must have the same number of columns",
        ));
    }
    if let Some(own) = self_index {
        if own.len() != queries.len() {
            return Err(GioError::invalid(
                "self_index",
                format!("has {} values for {} queries", own.len(), queries.len()),
            ));
        }
        if let Some(bad) = own.iter().find(|&&j| j < -1 || j >= (nt + nb) as i64) {
            return Err(GioError::invalid(
                "self_index",
                format!("must be -1 or a reference row in 0..{}, got {bad}", nt + nb),
            ));
        }
    }
    if k == 0 || k >= nt + nb {
        return Err(GioError::invalid(
            "k",
            format!("must be in 1..={}, got {k}", (nt + nb).saturating_sub(1)),
        ));
    }
    let t_norms = row_norms(reference.target);
    let b_norms = row_norms(reference.background);
    let max_ref = t_norms.iter().chain(&b_norms).cloned().fold(0.0, f64::max);
    let ctx = Context {
        reference,
        norms: [t_norms, b_norms].concat(),
        max_ref,
        k,
    };
    let per = map_row_chunks(
        queries.len().div_ceil(QUERY_BLOCK),
        (nt + nb) * d * QUERY_BLOCK,
        |b0, b1| {
            let (q0, q1) = (b0 * QUERY_BLOCK, (b1 * QUERY_BLOCK).min(queries.len()));
            let own = self_index.map(|own| &own[q0..q1]);
            ctx.count_block(queries.slice(q0, q1), own)
        },
    );
    Ok(per.into_iter().flatten().collect())
}

struct Context<'a, 'r, U, V> {
    reference: &'r KnnReference<'a, U, V>,
    norms: Vec<f64>,
    max_ref: f64,
    k: usize,
}

impl<U: Element, V: Element> Context<'_, '_, U, V> {
    fn reference_row_sq_dist<T: Element>(&self, q: &[T], j: usize) -> f64 {
        let nt = self.reference.target.len();
        if j < nt {
            sq_dist(q, self.reference.target.row(j))
        } else {
            sq_dist(q, self.reference.background.row(j - nt))
        }
    }

    fn count_block<T: Element>(&self, queries: Rows<'_, T>, own: Option<&[i64]>) -> Vec<u32> {
        let (nt, n_ref) = (self.reference.target.len(), self.norms.len());
        let d = queries.dim();
        let mut out = Vec::with_capacity(queries.len());
        let mut start = 0;
        while start < queries.len() {
            let end = (start + QUERY_BLOCK).min(queries.len());
            let block = queries.slice(start, end);
            let mut gram = vec![0.0f64; block.len() * n_ref];
            let split = block.len() * nt;
            dot_block(
                block.data(),
                self.reference.target.data(),
                d,
                &mut gram[..split],
            );
            dot_block(
                block.data(),
                self.reference.background.data(),
                d,
                &mut gram[split..],
            );
            let q_norms = row_norms(block);
            for (r, &qn) in q_norms.iter().enumerate() {
                let dots = |j: usize| {
                    if j < nt {
                        gram[r * nt + j]
                    } else {
                        gram[split + r * (n_ref - nt) + j - nt]
                    }
                };
                let own = own.and_then(|o| usize::try_from(o[start + r]).ok());
                out.push(self.count_one(block.row(r), qn, dots, own));
            }
            start = end;
        }
        out
    }

    /// Target rows among the k nearest of one query (reference row `own` skipped).
    fn count_one<T: Element>(
        &self,
        q: &[T],
        q_norm: f64,
        dots: impl Fn(usize) -> f64,
        own: Option<usize>,
    ) -> u32 {
        let n_ref = self.norms.len();
        let candidates = (0..n_ref).filter(|&j| Some(j) != own);
        let mut approx: Vec<(f64, usize)> = candidates
            .map(|j| ((q_norm + self.norms[j] - 2.0 * dots(j)).max(0.0), j))
            .collect();
        let k = self.k.min(approx.len());
        let bound = 2.0 * expansion_error_factor(q.len()) * (q_norm + self.max_ref);
        let kth = approx
            .select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0))
            .1
             .0;
        let threshold = kth + 2.0 * bound;
        let mut exact: Vec<(f64, usize)> = approx
            .iter()
            .filter(|a| a.0.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater))
            .map(|&(_, j)| (self.reference_row_sq_dist(q, j), j))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let nt = self.reference.target.len();
        exact[..k].iter().filter(|e| e.1 < nt).count() as u32
    }
}

/// The k-NN log-ratio of target counts (reference_ratio.knn_ratio):
/// s = ln((c_t + a)/n_t) − ln((k − c_t + a)/n_p), with `prior` a, `n_target` = n_t target rows and
/// `n_background` = n_p pool rows in the reference set.
pub fn knn_log_ratio(
    counts: &[u32],
    k: usize,
    n_target: usize,
    n_background: usize,
    prior: f64,
) -> Vec<f64> {
    let (nt, np, k) = (n_target as f64, n_background as f64, k as f64);
    counts
        .iter()
        .map(|&c| {
            let c = f64::from(c);
            ((c + prior) / nt).ln() - ((k - c + prior) / np).ln()
        })
        .collect()
}
