//! k-NN target counts: for each query (pool) row, how many of its k nearest rows in a reference
//! set (the target rows, then background rows such as a seeded pool sample) are target rows.
//!
//! Self-exclusion by index mapping, as reference_ratio.knn_counts: `self_index[i]` is query i's
//! own row in the reference (targets 0..n_t, then background rows), or −1; that row is never
//! counted, so a pool row in the sample (or a target row scored leave-self-out) is not its own
//! neighbour. Exact duplicates of a query at other indices do count (they are other rows).
//!
//! The k nearest are those of the exact squared distances `sq_dist`, ties to the lower reference
//! index (targets first, then background rows in order): the brute-force answer. It is found fast
//! and without changing a count: a blocked GEMM-shaped pass forms every query's Gram-form values
//! ‖q‖² + ‖r‖² − 2q·r (the float32 micro-kernel of `simd::center_scores_f32`, or float64
//! `dot_block` where norms are too large for float32), one selection per query finds the k-th
//! smallest of them, and every reference row whose value lies within twice the rigorous error
//! bound of it (`distance::f32_expansion_error_factor`, `expansion_error_factor`, plus the error of
//! `sq_dist` itself) is recomputed by `sq_dist`. Every row among the exact k nearest, and every
//! row tied with the k-th, is such a candidate, so the counts are those of the brute force, the
//! same for any thread count and on every fused SIMD level. Parallel over fixed chunks of queries.

use crate::distance::{
    expansion_error_factor, f32_expansion_error_factor, row_norms, F32_SAFE_NORM,
    F32_UNDERFLOW_PER_DIM,
};
use crate::error::GioError;
use crate::parallel::map_in_order;
use crate::ratio::nearest::{count_nearest_below, NearestScratch, QueryRow};
use crate::rows::{Element, Rows};
use crate::simd::{center_scores_f32, dot_block, sq_dist, PackedCenters};

/// Queries scored by one micro-kernel call: each reference panel is read once for all of them.
const QUERY_BLOCK: usize = 64;
/// Queries per parallel task (whole blocks): its buffers are allocated once per task.
const CHUNK_QUERIES: usize = 4 * QUERY_BLOCK;

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
    check_arguments(queries, reference, k, self_index)?;
    let ctx = Context::new(reference, k);
    let q_norms = row_norms(queries);
    let n = queries.len();
    let work = n * ctx.norms.len() * queries.dim();
    let per = map_in_order(work, 0..n.div_ceil(CHUNK_QUERIES), |c| {
        let (c0, c1) = (c * CHUNK_QUERIES, ((c + 1) * CHUNK_QUERIES).min(n));
        let mut scratch = Scratch::default();
        let mut out = Vec::with_capacity(c1 - c0);
        for q0 in (c0..c1).step_by(QUERY_BLOCK) {
            let q1 = (q0 + QUERY_BLOCK).min(c1);
            let own = self_index.map(|own| &own[q0..q1]);
            let block = queries.slice(q0, q1);
            ctx.count_block(block, &q_norms[q0..q1], own, &mut scratch, &mut out);
        }
        out
    });
    Ok(per.into_iter().flatten().collect())
}

/// The argument checks of `knn_target_counts`: each problem named by its argument.
fn check_arguments<T: Element, U: Element, V: Element>(
    queries: Rows<'_, T>,
    reference: &KnnReference<'_, U, V>,
    k: usize,
    self_index: Option<&[i64]>,
) -> Result<(), GioError> {
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
    if nt + nb > u32::MAX as usize {
        return Err(GioError::invalid(
            "background",
            format!(
                "target and background have {} rows, more than 2^32 - 1",
                nt + nb
            ),
        ));
    }
    if k == 0 || k >= nt + nb {
        return Err(GioError::invalid(
            "k",
            format!("must be in 1..={}, got {k}", (nt + nb).saturating_sub(1)),
        ));
    }
    Ok(())
}

/// The reference, its norms and (when they fit float32) its packed panels, shared by all tasks.
struct Context<'a, 'r, U, V> {
    reference: &'r KnnReference<'a, U, V>,
    norms: Vec<f64>,
    max_ref: f64,
    k: usize,
    /// Target and background packed for the float32 kernel, when every norm is float32-safe.
    packed: Option<[PackedCenters; 2]>,
}

/// Per-task buffers, reused by every query block of the task.
#[derive(Default)]
struct Scratch {
    /// Float32 scores ‖r‖² − 2q·r of a block: against the target, then the background.
    scores: [Vec<f32>; 2],
    /// Float64 approximate squared distances of a block (for norms too large for float32).
    gram: [Vec<f64>; 2],
    near_f32: NearestScratch<f32>,
    near_f64: NearestScratch<f64>,
}

impl<'a, 'r, U: Element, V: Element> Context<'a, 'r, U, V> {
    fn new(reference: &'r KnnReference<'a, U, V>, k: usize) -> Self {
        let t_norms = row_norms(reference.target);
        let b_norms = row_norms(reference.background);
        let max_ref = t_norms.iter().chain(&b_norms).cloned().fold(0.0, f64::max);
        let d = reference.target.dim();
        let packed = (max_ref <= F32_SAFE_NORM).then(|| {
            [
                PackedCenters::new(reference.target.data(), d),
                PackedCenters::new(reference.background.data(), d),
            ]
        });
        Context {
            reference,
            norms: [t_norms, b_norms].concat(),
            max_ref,
            k,
            packed,
        }
    }

    fn reference_row_sq_dist<T: Element>(&self, q: &[T], j: usize) -> f64 {
        let nt = self.reference.target.len();
        if j < nt {
            sq_dist(q, self.reference.target.row(j))
        } else {
            sq_dist(q, self.reference.background.row(j - nt))
        }
    }

    /// Appends the counts of a block of at most `QUERY_BLOCK` queries to `out`: float32 scores
    /// when every norm is small enough for them, else float64 Gram values.
    fn count_block<T: Element>(
        &self,
        block: Rows<'_, T>,
        q_norms: &[f64],
        own: Option<&[i64]>,
        scratch: &mut Scratch,
        out: &mut Vec<u32>,
    ) {
        let own_of = |r: usize| own.and_then(|o| usize::try_from(o[r]).ok());
        let (nt, k) = (self.reference.target.len(), self.k);
        let lens = [nt, self.norms.len() - nt];
        let d = block.dim();
        let exact = |r: usize| move |j| self.reference_row_sq_dist(block.row(r), j);
        match &self.packed {
            Some(packed) if q_norms.iter().all(|&n| n <= F32_SAFE_NORM) => {
                let relative = f32_expansion_error_factor(d) + 2.0 * expansion_error_factor(d);
                let absolute = F32_UNDERFLOW_PER_DIM * d as f64;
                let Scratch {
                    scores, near_f32, ..
                } = scratch;
                let strides = self.scores_f32(block, packed, scores);
                for (r, &q_norm) in q_norms.iter().enumerate() {
                    let row = QueryRow {
                        parts: row_parts(scores, strides, lens, r),
                        q_norm,
                        margin: 2.0 * (relative * (q_norm + self.max_ref) + absolute),
                        own: own_of(r),
                    };
                    out.push(count_nearest_below(row, k, nt, exact(r), near_f32));
                }
            }
            _ => {
                let Scratch { gram, near_f64, .. } = scratch;
                self.distances_f64(block, q_norms, gram);
                for (r, &q_norm) in q_norms.iter().enumerate() {
                    let row = QueryRow {
                        parts: row_parts(gram, lens, lens, r),
                        q_norm,
                        margin: 4.0 * expansion_error_factor(d) * (q_norm + self.max_ref),
                        own: own_of(r),
                    };
                    out.push(count_nearest_below(row, k, nt, exact(r), near_f64));
                }
            }
        }
    }

    /// The float32 scores ‖r‖² − 2q·r of `block` against the target and the background panels,
    /// row-major; returns each part's row stride (its padded length).
    fn scores_f32<T: Element>(
        &self,
        block: Rows<'_, T>,
        packed: &[PackedCenters; 2],
        scores: &mut [Vec<f32>; 2],
    ) -> [usize; 2] {
        for (part, p) in scores.iter_mut().zip(packed) {
            part.resize(block.len() * p.padded_len(), 0.0);
            if p.padded_len() > 0 {
                center_scores_f32(block.data(), p, part);
            }
        }
        [packed[0].padded_len(), packed[1].padded_len()]
    }

    /// Float64 approximate squared distances ‖q‖² + ‖r‖² − 2q·r of `block` (clamped at 0)
    /// against the target and the background rows, row-major.
    fn distances_f64<T: Element>(
        &self,
        block: Rows<'_, T>,
        q_norms: &[f64],
        gram: &mut [Vec<f64>; 2],
    ) {
        let (target, background) = (&self.reference.target, &self.reference.background);
        gram[0].resize(block.len() * target.len(), 0.0);
        gram[1].resize(block.len() * background.len(), 0.0);
        dot_block(block.data(), target.data(), block.dim(), &mut gram[0]);
        dot_block(block.data(), background.data(), block.dim(), &mut gram[1]);
        let (t_norms, b_norms) = self.norms.split_at(target.len());
        for (part, norms) in gram.iter_mut().zip([t_norms, b_norms]) {
            for (r, &q_norm) in q_norms.iter().enumerate() {
                let row = &mut part[r * norms.len()..(r + 1) * norms.len()];
                for (g, &r_norm) in row.iter_mut().zip(norms) {
                    *g = (q_norm + r_norm - 2.0 * *g).max(0.0);
                }
            }
        }
    }
}

/// Query r's values in the two parts of a block's buffers (`strides` apart, `lens` long).
fn row_parts<S>(
    parts: &mut [Vec<S>; 2],
    strides: [usize; 2],
    lens: [usize; 2],
    r: usize,
) -> [&mut [S]; 2] {
    let [t, b] = parts;
    [
        &mut t[r * strides[0]..r * strides[0] + lens[0]],
        &mut b[r * strides[1]..r * strides[1] + lens[1]],
    ]
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
