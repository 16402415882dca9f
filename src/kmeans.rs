//! K-Means: greedy k-means++ on a bounded sample, then Lloyd iterations whose assignment step
//! is a tiled Gram product (‖x‖² − 2x·c + ‖c‖², never an N×K matrix), centroid sums in f64,
//! empty clusters re-seeded deterministically. Deterministic for a seed, whatever the number of
//! threads: chunk sizes depend only on the data's shape and partial sums combine in order.

use crate::distance::sq_dist;
use crate::error::GioError;
use crate::parallel::{map_row_chunks, worth_parallel};
use crate::rng::SplitMix64;
use crate::rows::Precision;
use crate::rows::{Element, Rows};
use crate::simd::{avx512_active, dot, dot_block, nearest_centers_f32, PackedCenters};

/// The float32 view of rows whose element type is f32 (checked by the caller via PRECISION).
fn as_f32_rows<T: Element>(rows: &[T]) -> &[f32] {
    assert!(T::PRECISION == Precision::F32);
    // SAFETY: T is f32 (only f32 has Precision::F32).
    unsafe { std::slice::from_raw_parts(rows.as_ptr() as *const f32, rows.len()) }
}
use rayon::prelude::*;

/// How the first centers are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum KMeansInit {
    /// Greedy k-means++ (2 + ln K candidates per step, as scikit-learn) on a sample of at most
    /// `init_sample_size` rows.
    KMeansPlusPlus,
    /// K distinct rows drawn uniformly.
    Random,
    /// These centers (K × d, row-major).
    Centers(Vec<f64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub n_clusters: usize,
    pub max_iter: usize,
    /// Convergence when the centers moved by at most `tol` × (mean per-feature variance of X),
    /// in summed squared distance (scikit-learn's rule), or when no label changed.
    pub tol: f64,
    pub n_init: usize,
    pub seed: u64,
    pub init: KMeansInit,
    /// Rows k-means++ looks at (0: automatic, bounded so the init costs about as much as one
    /// Lloyd iteration).
    pub init_sample_size: usize,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// K × d, row-major.
    pub centers: Vec<f64>,
    pub labels: Vec<u32>,
    /// Σ ‖x_i − c_{label_i}‖², from exact differences.
    pub inertia: f64,
    pub n_iter: usize,
}

/// Target rows per assignment task (their float32 rows stay in L2 while every center panel
/// passes) and centers per float64 tile: a tile's Gram block (256 × 256 f64) stays in L2.
const ASSIGN_ROWS: usize = 256;
const ASSIGN_CENTERS: usize = 256;
/// Memory for the per-chunk centroid sums of one update step.
const UPDATE_PARTIALS_BYTES: usize = 64 << 20;

fn check(x: &Rows<'_, impl Element>, params: &KMeansParams) -> Result<(), GioError> {
    let k = params.n_clusters;
    if k == 0 {
        return Err(GioError::invalid("n_clusters", "must be >= 1"));
    }
    if k > x.len() {
        return Err(GioError::invalid(
            "n_clusters",
            format!("{k} clusters need at least {k} rows, X has {}", x.len()),
        ));
    }
    if params.n_init == 0 {
        return Err(GioError::invalid("n_init", "must be >= 1"));
    }
    if !(params.tol >= 0.0 && params.tol.is_finite()) {
        return Err(GioError::invalid(
            "tol",
            format!("must be finite and >= 0, got {}", params.tol),
        ));
    }
    if let KMeansInit::Centers(c) = &params.init {
        if c.len() != k * x.dim() {
            return Err(GioError::invalid(
                "init",
                format!("needs {k} × {} centers, got {} values", x.dim(), c.len()),
            ));
        }
        if c.iter().any(|v| !v.is_finite()) {
            return Err(GioError::invalid("init", "contains NaN or infinite values"));
        }
    }
    Ok(())
}

fn row_norms<T: Element>(x: Rows<'_, T>) -> Vec<f64> {
    map_row_chunks(x.len(), x.dim(), |s, e| {
        (s..e).map(|i| dot(x.row(i), x.row(i))).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Nearest center of every row (ties to the lowest center index) by the Gram form, written to
/// `labels`; `dists` gets the squared distance to it from exact differences. Identical for any
/// thread count; across CPU types only for float64 data (see the float32 note inside).
pub fn assign<T: Element>(
    x: Rows<'_, T>,
    x_norms: &[f64],
    centers: Rows<'_, f64>,
    labels: &mut [u32],
    dists: &mut [f64],
) {
    let c_norms: Vec<f64> = (0..centers.len())
        .map(|c| dot(centers.row(c), centers.row(c)))
        .collect();
    let dim = x.dim();
    let k = centers.len();
    // float32 data on AVX-512: a float32 GEMM-style kernel picks the nearest center (twice the
    // throughput; near-ties may then resolve differently than on other CPUs, as with any
    // float32 K-Means); the reported distance is still exact.
    let packed = (T::PRECISION == Precision::F32 && avx512_active())
        .then(|| PackedCenters::new(centers.data(), dim));
    let work = |(block, (labels, dists)): (usize, (&mut [u32], &mut [f64]))| {
        let start = block * ASSIGN_ROWS;
        let rows = x.slice(start, start + labels.len());
        if let Some(packed) = &packed {
            if nearest_centers_f32(as_f32_rows(rows.data()), packed, labels).is_some() {
                for (r, (dist, &c)) in dists.iter_mut().zip(labels.iter()).enumerate() {
                    *dist = sq_dist(rows.row(r), centers.row(c as usize));
                }
                return;
            }
        }
        let mut best = vec![(f64::INFINITY, 0u32); labels.len()];
        let mut gram = vec![0.0f64; ASSIGN_ROWS * ASSIGN_CENTERS];
        for c0 in (0..k).step_by(ASSIGN_CENTERS) {
            let c1 = (c0 + ASSIGN_CENTERS).min(k);
            let cols = c1 - c0;
            let gram = &mut gram[..rows.len() * cols];
            dot_block(rows.data(), centers.slice(c0, c1).data(), dim, gram);
            for (r, gram_row) in gram.chunks_exact(cols).enumerate() {
                let xn = x_norms[start + r];
                for (c, &g) in (c0..c1).zip(gram_row) {
                    let s = xn + c_norms[c] - 2.0 * g;
                    if s < best[r].0 {
                        best[r] = (s, c as u32);
                    }
                }
            }
        }
        for (r, ((label, dist), &(_, c))) in labels
            .iter_mut()
            .zip(dists.iter_mut())
            .zip(&best)
            .enumerate()
        {
            *label = c;
            *dist = sq_dist(rows.row(r), centers.row(c as usize));
        }
    };
    let chunks = labels
        .chunks_mut(ASSIGN_ROWS)
        .zip(dists.chunks_mut(ASSIGN_ROWS))
        .enumerate();
    if worth_parallel(x.len() * dim * k.min(64)) {
        chunks.collect::<Vec<_>>().into_par_iter().for_each(work);
    } else {
        chunks.for_each(work);
    }
}

/// Per-feature variance mean, for the tolerance (scikit-learn's `_tolerance`).
fn mean_variance<T: Element>(x: Rows<'_, T>) -> f64 {
    let means = x.column_means();
    let n = x.len() as f64;
    let mut var = vec![0.0f64; x.dim()];
    for i in 0..x.len() {
        for ((v, &m), xv) in var.iter_mut().zip(&means).zip(x.row(i)) {
            let t = xv.to_f64() - m;
            *v += t * t;
        }
    }
    var.iter().sum::<f64>() / n / x.dim() as f64
}

/// Greedy k-means++ on the first `sample` rows of a seeded permutation. The sample is gathered
/// into one block so each step scores all its candidates with one pass of Gram tiles.
fn kmeans_plus_plus<T: Element>(
    x: Rows<'_, T>,
    k: usize,
    sample_size: usize,
    rng: &mut SplitMix64,
) -> Vec<f64> {
    let n = x.len();
    let dim = x.dim();
    // A seeded partial Fisher–Yates shuffle picks the sample.
    let mut order: Vec<usize> = (0..n).collect();
    let s = sample_size.clamp(k, n);
    for i in 0..s {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut block: Vec<T> = Vec::with_capacity(s * dim);
    for &i in &order[..s] {
        block.extend_from_slice(x.row(i));
    }
    let sample = Rows::new("sample", &block, dim).expect("whole rows");
    let norms = row_norms(sample);
    let trials = 2 + (k as f64).ln().floor() as usize;
    // Squared distances (Gram form, clamped at 0) from every sample row to each candidate,
    // column-major per candidate: out[t * s + i].
    let distances_to = |candidates: &[usize]| -> Vec<f64> {
        let mut cand: Vec<T> = Vec::with_capacity(candidates.len() * dim);
        for &c in candidates {
            cand.extend_from_slice(sample.row(c));
        }
        let t = candidates.len();
        let per_chunk: Vec<Vec<f64>> = map_row_chunks(s, dim * t, |a, b| {
            let mut gram = vec![0.0f64; (b - a) * t];
            dot_block(sample.slice(a, b).data(), &cand, dim, &mut gram);
            for (r, row) in gram.chunks_exact_mut(t).enumerate() {
                for (value, &c) in row.iter_mut().zip(candidates) {
                    *value = (norms[a + r] + norms[c] - 2.0 * *value).max(0.0);
                }
            }
            gram
        });
        let mut out = vec![0.0f64; t * s];
        let mut row = 0;
        for chunk in per_chunk {
            for values in chunk.chunks_exact(t) {
                for (c, &v) in values.iter().enumerate() {
                    out[c * s + row] = v;
                }
                row += 1;
            }
        }
        out
    };
    let first = rng.below(s);
    let mut chosen = vec![first];
    let mut closest = distances_to(&[first]);
    for _ in 1..k {
        // Candidates with probability proportional to their distance to the centers so far.
        let potential: f64 = closest.iter().sum();
        let mut candidates = Vec::with_capacity(trials);
        for _ in 0..trials {
            let target = rng.next_f64() * potential;
            let mut acc = 0.0;
            let mut pick = s - 1;
            for (i, &d) in closest.iter().enumerate() {
                acc += d;
                if acc > target {
                    pick = i;
                    break;
                }
            }
            candidates.push(pick);
        }
        let dists = distances_to(&candidates);
        // The candidate that lowers the potential most (ties: the first drawn).
        let mut best: Option<(f64, usize)> = None;
        for (t, column) in dists.chunks_exact(s).enumerate() {
            let pot: f64 = column.iter().zip(&closest).map(|(&a, &b)| a.min(b)).sum();
            if best.is_none_or(|(b, _)| pot < b) {
                best = Some((pot, t));
            }
        }
        let (_, t) = best.expect("at least one trial");
        for (c, &d) in closest.iter_mut().zip(&dists[t * s..(t + 1) * s]) {
            *c = c.min(d);
        }
        chosen.push(candidates[t]);
    }
    chosen
        .iter()
        .flat_map(|&c| sample.row(c).iter().map(|v| v.to_f64()))
        .collect()
}

fn random_rows<T: Element>(x: Rows<'_, T>, k: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut centers = Vec::with_capacity(k * x.dim());
    for i in 0..k {
        let j = i + rng.below(n - i);
        order.swap(i, j);
        centers.extend(x.row(order[i]).iter().map(|v| v.to_f64()));
    }
    centers
}

/// Centroid sums and counts per cluster, in fixed chunks combined in order.
fn centroid_sums<T: Element>(x: Rows<'_, T>, labels: &[u32], k: usize) -> (Vec<f64>, Vec<u64>) {
    let dim = x.dim();
    let n = x.len();
    let parts = (UPDATE_PARTIALS_BYTES / (k * dim * 8).max(1)).clamp(1, 32);
    let rows_per_part = n.div_ceil(parts).max(1);
    let run = |p: usize| {
        let (s, e) = (p * rows_per_part, ((p + 1) * rows_per_part).min(n));
        let mut sums = vec![0.0f64; k * dim];
        let mut counts = vec![0u64; k];
        for (i, &label) in labels.iter().enumerate().take(e).skip(s) {
            let c = label as usize;
            counts[c] += 1;
            for (acc, v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(x.row(i)) {
                *acc += v.to_f64();
            }
        }
        (sums, counts)
    };
    let n_parts = n.div_ceil(rows_per_part);
    let partials: Vec<(Vec<f64>, Vec<u64>)> = if worth_parallel(n * dim) {
        (0..n_parts).into_par_iter().map(run).collect()
    } else {
        (0..n_parts).map(run).collect()
    };
    let mut iter = partials.into_iter();
    let (mut sums, mut counts) = iter
        .next()
        .unwrap_or_else(|| (vec![0.0; k * dim], vec![0; k]));
    for (s, c) in iter {
        sums.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
        counts.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
    }
    (sums, counts)
}

/// One run of Lloyd's algorithm from `centers`.
fn lloyd<T: Element>(
    x: Rows<'_, T>,
    x_norms: &[f64],
    mut centers: Vec<f64>,
    params: &KMeansParams,
    tol: f64,
    poll: &mut dyn FnMut(usize, f64) -> Result<(), GioError>,
) -> Result<KMeansFit, GioError> {
    let (n, dim, k) = (x.len(), x.dim(), params.n_clusters);
    let mut labels = vec![0u32; n];
    let mut previous = vec![u32::MAX; n];
    let mut dists = vec![0.0f64; n];
    let mut n_iter = 0;
    for iteration in 1..=params.max_iter.max(1) {
        n_iter = iteration;
        assign(
            x,
            x_norms,
            Rows::new("centers", &centers, dim)?,
            &mut labels,
            &mut dists,
        );
        poll(iteration, dists.iter().sum())?;
        if labels == previous {
            break; // strict convergence: the last update changed nothing
        }
        let (sums, counts) = centroid_sums(x, &labels, k);
        let mut updated = vec![0.0f64; k * dim];
        for c in 0..k {
            let out = &mut updated[c * dim..(c + 1) * dim];
            if counts[c] > 0 {
                let inv = 1.0 / counts[c] as f64;
                out.iter_mut()
                    .zip(&sums[c * dim..(c + 1) * dim])
                    .for_each(|(o, s)| *o = s * inv);
            }
        }
        // Empty clusters take the rows farthest from their centers (ties to the lowest index).
        let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
        if !empty.is_empty() {
            let mut far: Vec<usize> = (0..n).collect();
            far.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]).then(a.cmp(&b)));
            for (c, &row) in empty.iter().zip(&far) {
                updated[c * dim..(c + 1) * dim]
                    .iter_mut()
                    .zip(x.row(row))
                    .for_each(|(o, v)| *o = v.to_f64());
            }
        }
        let shift: f64 = updated
            .iter()
            .zip(&centers)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        centers = updated;
        std::mem::swap(&mut previous, &mut labels);
        if shift <= tol {
            break;
        }
    }
    // Labels and inertia for the final centers.
    assign(
        x,
        x_norms,
        Rows::new("centers", &centers, dim)?,
        &mut labels,
        &mut dists,
    );
    Ok(KMeansFit {
        centers,
        labels,
        inertia: dists.iter().sum(),
        n_iter,
    })
}

/// Fits K-Means: `n_init` runs from different seeds, the lowest inertia kept (ties: the first).
/// `poll(iteration, inertia)` is called once per Lloyd iteration; its error stops the fit.
pub fn kmeans<T: Element>(
    x: Rows<'_, T>,
    params: &KMeansParams,
    poll: &mut dyn FnMut(usize, f64) -> Result<(), GioError>,
) -> Result<KMeansFit, GioError> {
    check(&x, params)?;
    let k = params.n_clusters;
    let x_norms = row_norms(x);
    let tol = params.tol * mean_variance(x);
    let sample = if params.init_sample_size > 0 {
        params.init_sample_size
    } else {
        // About the cost of one Lloyd iteration on all rows, but at least 4 rows per cluster.
        let trials = 2 + (k as f64).ln().floor() as usize;
        (x.len() / trials).max(4 * k).max(1024)
    };
    let mut best: Option<KMeansFit> = None;
    let runs = if matches!(params.init, KMeansInit::Centers(_)) {
        1
    } else {
        params.n_init
    };
    for run in 0..runs {
        let mut rng =
            SplitMix64::new(params.seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let centers = match &params.init {
            KMeansInit::KMeansPlusPlus => kmeans_plus_plus(x, k, sample, &mut rng),
            KMeansInit::Random => random_rows(x, k, &mut rng),
            KMeansInit::Centers(c) => c.clone(),
        };
        let fit = lloyd(x, &x_norms, centers, params, tol, poll)?;
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    Ok(best.expect("n_init >= 1"))
}
