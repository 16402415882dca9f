//! K-Means: greedy k-means++ on a bounded sample, then Lloyd iterations whose assignment step
//! is a tiled Gram product (‖x‖² − 2x·c + ‖c‖², never an N×K matrix), centroid sums in f64,
//! empty clusters re-seeded deterministically. Deterministic for a seed, whatever the number of
//! threads: chunk sizes depend only on the data's shape and partial sums combine in order.

use crate::distance::{
    expansion_error_factor, f32_expansion_error_factor, row_norms, sq_dist, F32_SAFE_NORM,
    F32_UNDERFLOW_PER_DIM,
};
use crate::error::GioError;
use crate::memory;
use crate::parallel::{map_in_order, rows_per_chunk};
use crate::params::{at_least, finite, Valid};
use crate::rng::SplitMix64;
use crate::rows::{nonfinite_problem, Element, Rows};
use crate::simd::{
    dot, dot_block, nearest_centers_f32, sq_dists, PackedCenters, MAX_PACKED_CENTERS,
};

/// How the first centers are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum KMeansInit {
    /// Greedy k-means++ (2 + ln K candidates per step, as scikit-learn) on a sample of at most
    /// `init_sample_size` rows.
    KMeansPlusPlus,
    /// K distinct rows drawn uniformly.
    Random,
    /// These centers: K rows of `dim` values, row-major.
    Centers { values: Vec<f64>, dim: usize },
}

impl KMeansInit {
    /// The names of the initialisations that are not explicit centers.
    pub const NAMES: [&'static str; 2] = ["k-means++", "random"];
}

/// The options of a K-Means fit, as the caller gave them (`gio_rs.KMeans`'s names).
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub n_clusters: usize,
    /// Lloyd iterations per run, at least 1.
    pub max_iter: usize,
    /// Convergence when the centers moved by at most `tol` × (mean per-feature variance of X),
    /// in summed squared distance (scikit-learn's rule), or when no label changed.
    pub tol: f64,
    pub n_init: usize,
    pub seed: u64,
    pub init: KMeansInit,
    /// Rows k-means++ looks at (0: automatic, see `plus_plus_sample`).
    pub init_sample_size: usize,
}

/// `KMeansParams` that passed `check`.
pub type ValidKMeansParams = Valid<KMeansParams>;

impl KMeansParams {
    /// Checks every option (the rules that need X, such as K <= rows, are checked by `kmeans`).
    pub fn check(self) -> Result<ValidKMeansParams, GioError> {
        at_least("n_clusters", self.n_clusters, 1)?;
        at_least("n_init", self.n_init, 1)?;
        at_least("max_iter", self.max_iter, 1)?;
        finite("tol", self.tol, Some(0.0), None)?;
        if let KMeansInit::Centers { values, dim } = &self.init {
            if *dim == 0 || values.len() % dim != 0 {
                return Err(GioError::invalid(
                    "init",
                    format!("{} values do not split into rows of {dim}", values.len()),
                ));
            }
            let rows = values.len() / dim;
            if rows != self.n_clusters {
                return Err(GioError::invalid(
                    "init",
                    format!("has {rows} rows but n_clusters is {}", self.n_clusters),
                ));
            }
            if let Some(problem) = nonfinite_problem(values, *dim, "rows") {
                return Err(GioError::invalid("init", problem));
            }
        }
        Ok(Valid::checked(self))
    }
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

/// The nearest center of every row: the smallest squared distance from exact differences
/// (`sq_dist`), ties to the lowest center index, written to `labels`, that distance to `dists`.
/// Found by Gram-form kernels (float32 where a float32 kernel runs, else float64) with a rigorous
/// roundoff bound; a row whose two best candidates are too close for that bound to call is
/// re-checked against every center from exact differences. So the labels are exact and identical
/// for any thread count and any CPU.
pub fn assign<T: Element>(
    x: Rows<'_, T>,
    x_norms: &[f64],
    centers: Rows<'_, f64>,
    labels: &mut [u32],
    dists: &mut [f64],
) {
    let mut lower = vec![0.0f64; labels.len()];
    assign_with_bounds(x, x_norms, centers, labels, dists, &mut lower);
}

/// One task of an assignment: its index and its rows' labels, distances and lower bounds.
type AssignChunk<'a> = (usize, ((&'a mut [u32], &'a mut [f64]), &'a mut [f64]));

/// The nearest center of `row` from exact differences to every center (ties to the lowest
/// index): (index, its squared distance, the second-smallest squared distance).
fn exact_nearest<T: Element>(row: &[T], centers: Rows<'_, f64>) -> (u32, f64, f64) {
    let mut dists = vec![0.0f64; centers.len()];
    sq_dists(row, centers.data(), centers.dim(), &mut dists);
    let (mut index, mut best, mut second) = (0u32, f64::INFINITY, f64::INFINITY);
    for (c, &d) in dists.iter().enumerate() {
        if d < best {
            (index, best, second) = (c as u32, d, best);
        } else if d < second {
            second = d;
        }
    }
    if best == f64::INFINITY {
        // No finite distance (NaN rows, overflow): report the label's own distance, NaN included.
        best = dists.get(index as usize).copied().unwrap_or(f64::NAN);
    }
    (index, best, second)
}

/// `assign`, plus in `lower` a lower bound on each row's distance (not squared) to every center
/// other than its own: the second-best candidate's squared distance less its roundoff bound.
fn assign_with_bounds<T: Element>(
    x: Rows<'_, T>,
    x_norms: &[f64],
    centers: Rows<'_, f64>,
    labels: &mut [u32],
    dists: &mut [f64],
    lower: &mut [f64],
) {
    let c_norms: Vec<f64> = (0..centers.len())
        .map(|c| dot(centers.row(c), centers.row(c)))
        .collect();
    let c_norm_max = c_norms.iter().copied().fold(0.0f64, f64::max);
    let x_norm_max = x_norms.iter().copied().fold(0.0f64, f64::max);
    let dim = x.dim();
    let k = centers.len();
    // The float32 micro-kernel (2× float64's throughput, float64 data rounded to float32 on the
    // fly) wherever it runs and the values fit in float32 with room to spare.
    let packed =
        if c_norm_max <= F32_SAFE_NORM && x_norm_max <= F32_SAFE_NORM && k <= MAX_PACKED_CENTERS {
            Some(PackedCenters::new(centers.data(), dim))
        } else {
            None
        };
    // |approximate − exact| squared distance for a row with ‖x‖² = xn, against any center: the
    // Gram form's roundoff per unit of ‖x‖² + max‖c‖² (float32 or float64, doubled for safety),
    // plus that of the exact differences themselves, plus an absolute term for values that
    // underflow (far below anything but all-tiny data).
    let exact_relative = 2.0 * expansion_error_factor(dim);
    let (relative, absolute) = if packed.is_some() {
        let gram = f32_expansion_error_factor(dim);
        (gram + exact_relative, dim as f64 * F32_UNDERFLOW_PER_DIM)
    } else {
        (2.0 * exact_relative, dim as f64 * 2f64.powi(-1000))
    };
    let error = |xn: f64| relative * (xn + c_norm_max) + absolute;
    let exact_error = |xn: f64| exact_relative * (xn + c_norm_max) + dim as f64 * 2f64.powi(-1000);
    // Row r of a task, given its best candidate c and the approximate squared distances of the
    // best and second-best candidates: the label, its exact distance, the lower bound.
    let settle = |row: &[T], xn: f64, c: u32, best: f64, second: f64| -> (u32, f64, f64) {
        let e = error(xn);
        // NaN or inf (overflowing values) fail this test too.
        if second - best > 2.0 * e {
            let dist = sq_dist(row, centers.row(c as usize));
            (c, dist, (second - e).max(0.0).sqrt())
        } else {
            let (c, dist, second) = exact_nearest(row, centers);
            (c, dist, (second - exact_error(xn)).max(0.0).sqrt())
        }
    };
    let work = |(block, ((labels, dists), lower)): AssignChunk<'_>| {
        let start = block * ASSIGN_ROWS;
        let rows = x.slice(start, start + labels.len());
        let norms = &x_norms[start..start + labels.len()];
        let candidates = match &packed {
            Some(packed) => packed_candidates(rows, norms, packed, labels),
            None => gram_candidates(rows, norms, centers, &c_norms),
        };
        for (r, (((label, dist), low), &(c, best, second))) in labels
            .iter_mut()
            .zip(dists.iter_mut())
            .zip(lower.iter_mut())
            .zip(&candidates)
            .enumerate()
        {
            (*label, *dist, *low) = settle(rows.row(r), norms[r], c, best, second);
        }
    };
    let chunks: Vec<AssignChunk<'_>> = labels
        .chunks_mut(ASSIGN_ROWS)
        .zip(dists.chunks_mut(ASSIGN_ROWS))
        .zip(lower.chunks_mut(ASSIGN_ROWS))
        .enumerate()
        .collect();
    map_in_order(x.len() * dim * k.min(64), chunks, work);
}

/// Per row of `rows` (squared norms `norms`): its best center and the approximate squared
/// distances to its best and second-best centers, by the float32 packed kernel (`labels` is its
/// scratch space).
fn packed_candidates<T: Element>(
    rows: Rows<'_, T>,
    norms: &[f64],
    packed: &PackedCenters,
    labels: &mut [u32],
) -> Vec<(u32, f64, f64)> {
    let n = labels.len();
    let (mut best, mut second) = (vec![0.0f32; n], vec![0.0f32; n]);
    nearest_centers_f32(rows.data(), packed, labels, &mut best, &mut second);
    (0..n)
        .map(|r| {
            let xn = norms[r];
            (labels[r], best[r] as f64 + xn, second[r] as f64 + xn)
        })
        .collect()
}

/// `packed_candidates` by float64 Gram tiles, for values too large for float32.
fn gram_candidates<T: Element>(
    rows: Rows<'_, T>,
    norms: &[f64],
    centers: Rows<'_, f64>,
    c_norms: &[f64],
) -> Vec<(u32, f64, f64)> {
    let (n, k, dim) = (rows.len(), centers.len(), rows.dim());
    let mut candidates = vec![(0u32, f64::INFINITY, f64::INFINITY); n];
    let mut gram = vec![0.0f64; ASSIGN_ROWS * ASSIGN_CENTERS];
    for c0 in (0..k).step_by(ASSIGN_CENTERS) {
        let c1 = (c0 + ASSIGN_CENTERS).min(k);
        let cols = c1 - c0;
        let gram = &mut gram[..n * cols];
        dot_block(rows.data(), centers.slice(c0, c1).data(), dim, gram);
        for (r, gram_row) in gram.chunks_exact(cols).enumerate() {
            let xn = norms[r];
            let b = &mut candidates[r];
            for (c, &g) in (c0..c1).zip(gram_row) {
                let s = xn + c_norms[c] - 2.0 * g;
                if s < b.1 {
                    *b = (c as u32, s, b.1);
                } else if s < b.2 {
                    b.2 = s;
                }
            }
        }
    }
    candidates
}

/// How far the centers moved in the last update: the largest shift, its center, and the
/// largest shift of any other center (each rounded up), so a row's bound to "every other
/// center" drops by the largest shift among the centers that are not its own.
#[derive(Clone, Copy)]
struct Moved {
    largest: f64,
    largest_center: u32,
    second: f64,
}

impl Moved {
    fn new(shifts_sq: &[f64]) -> Self {
        let up = |sq: f64| sq.sqrt() * (1.0 + 1e-9) + 1e-300;
        let mut m = Moved {
            largest: 0.0,
            largest_center: u32::MAX,
            second: 0.0,
        };
        for (c, &sq) in shifts_sq.iter().enumerate() {
            let d = up(sq);
            if d > m.largest {
                m = Moved {
                    largest: d,
                    largest_center: c as u32,
                    second: m.largest,
                };
            } else if d > m.second {
                m.second = d;
            }
        }
        m
    }

    /// The most any center other than `own` moved.
    fn except(&self, own: u32) -> f64 {
        if own == self.largest_center {
            self.second
        } else {
            self.largest
        }
    }
}

/// Hamerly's step, for centers that moved as `moved` says since `labels` and `lower` were
/// computed: a row whose exact distance to its center is below its (moved-down) lower bound to
/// every other center keeps its label without looking at the others; only the other rows are
/// assigned again in full. The same labels as a full assignment, at a fraction of its cost once
/// the centers settle.
fn reassign<T: Element>(
    x: Rows<'_, T>,
    x_norms: &[f64],
    centers: Rows<'_, f64>,
    moved: Moved,
    labels: &mut [u32],
    dists: &mut [f64],
    lower: &mut [f64],
) -> Result<(), GioError> {
    let dim = x.dim();
    let current: &[u32] = labels;
    // Exact distance to the current center for every row; collect the rows that must look again.
    let run = |(b, (dists, lower)): (usize, (&mut [f64], &mut [f64]))| -> Vec<usize> {
        let start = b * ASSIGN_ROWS;
        let mut redo = Vec::new();
        for (r, (dist, low)) in dists.iter_mut().zip(lower.iter_mut()).enumerate() {
            let i = start + r;
            *dist = sq_dist(x.row(i), centers.row(current[i] as usize));
            *low = (*low - moved.except(current[i])).max(0.0);
            // Keep the label only when provably nearest (NaN or a tie: look again).
            let keep = dist.sqrt() < *low;
            if !keep {
                redo.push(i);
            }
        }
        redo
    };
    let chunks: Vec<_> = dists
        .chunks_mut(ASSIGN_ROWS)
        .zip(lower.chunks_mut(ASSIGN_ROWS))
        .enumerate()
        .collect();
    let per_chunk = map_in_order(x.len() * dim, chunks, run);
    let redo: Vec<usize> = per_chunk.into_iter().flatten().collect();
    if redo.is_empty() {
        return Ok(());
    }
    let mut gathered: Vec<T> = Vec::with_capacity(redo.len() * dim);
    for &i in &redo {
        gathered.extend_from_slice(x.row(i));
    }
    let sub = Rows::new("X", &gathered, dim)?;
    let sub_norms: Vec<f64> = redo.iter().map(|&i| x_norms[i]).collect();
    let mut sub_labels = vec![0u32; redo.len()];
    let mut sub_dists = vec![0.0f64; redo.len()];
    let mut sub_lower = vec![0.0f64; redo.len()];
    assign_with_bounds(
        sub,
        &sub_norms,
        centers,
        &mut sub_labels,
        &mut sub_dists,
        &mut sub_lower,
    );
    for (j, &i) in redo.iter().enumerate() {
        labels[i] = sub_labels[j];
        dists[i] = sub_dists[j];
        lower[i] = sub_lower[j];
    }
    Ok(())
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

/// Greedy k-means++ on the first `sample_size` rows of a seeded permutation (at least k, at most
/// all rows). The sample is gathered into one block (in the data's type: each step streams it
/// from memory, so narrower is faster) so each step scores all its candidates with one parallel
/// pass of Gram tiles, which also sums each candidate's potential per chunk; what remains serial
/// per step is O(chunks × candidates + one chunk).
fn kmeans_plus_plus<T: Element>(
    x: Rows<'_, T>,
    k: usize,
    sample_size: usize,
    rng: &mut SplitMix64,
) -> Vec<f64> {
    let (n, dim) = (x.len(), x.dim());
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
    let pp = PlusPlus::new(sample, plus_plus_trials(k));
    let first = rng.below(s);
    let mut chosen = vec![first];
    let mut closest = vec![f64::INFINITY; s];
    let scored = pp.score(&[first], &closest);
    let mut chunk_sums = pp.update(&mut closest, &scored, 0);
    for _ in 1..k {
        let candidates = pp.draw(rng, &chunk_sums, &closest);
        let scored = pp.score(&candidates, &closest);
        // The candidate that lowers the potential most (ties: the first drawn).
        let mut best: Option<(f64, usize)> = None;
        for t in 0..candidates.len() {
            let pot: f64 = scored.iter().map(|(_, p)| p[t]).sum();
            if best.is_none_or(|(b, _)| pot < b) {
                best = Some((pot, t));
            }
        }
        let (_, t) = best.expect("at least one trial");
        chunk_sums = pp.update(&mut closest, &scored, t);
        chosen.push(candidates[t]);
    }
    chosen
        .iter()
        .flat_map(|&c| sample.row(c).iter().map(|v| v.to_f64()))
        .collect()
}

/// Candidates k-means++ scores per center: 2 + ⌊ln K⌋, as scikit-learn.
fn plus_plus_trials(k: usize) -> usize {
    2 + (k as f64).ln().floor() as usize
}

/// Per chunk of the sample: the squared distances of its rows to each candidate (row-major, rows
/// × candidates) and per candidate Σ min(distance, closest) over its rows.
type Scored = Vec<(Vec<f64>, Vec<f64>)>;

/// The sample k-means++ runs on, cut into fixed chunks (by shape only, so results do not depend
/// on the thread count).
struct PlusPlus<'a, T: Element> {
    sample: Rows<'a, T>,
    norms: Vec<f64>,
    trials: usize,
    per: usize,
    n_chunks: usize,
}

impl<'a, T: Element> PlusPlus<'a, T> {
    fn new(sample: Rows<'a, T>, trials: usize) -> Self {
        let per = rows_per_chunk(sample.dim() * trials);
        PlusPlus {
            sample,
            norms: row_norms(sample),
            trials,
            per,
            n_chunks: sample.len().div_ceil(per),
        }
    }

    fn chunk(&self, c: usize) -> (usize, usize) {
        (c * self.per, ((c + 1) * self.per).min(self.sample.len()))
    }

    /// Squared distances (Gram form, clamped at 0) of every sample row to each candidate.
    fn score(&self, candidates: &[usize], closest: &[f64]) -> Scored {
        let (t, dim) = (candidates.len(), self.sample.dim());
        let mut cand: Vec<T> = Vec::with_capacity(t * dim);
        for &c in candidates {
            cand.extend_from_slice(self.sample.row(c));
        }
        let norms = &self.norms;
        let run = |chunk: usize| {
            let (a, b) = self.chunk(chunk);
            let mut gram = vec![0.0f64; (b - a) * t];
            dot_block(self.sample.slice(a, b).data(), &cand, dim, &mut gram);
            let mut potential = vec![0.0f64; t];
            for (r, row) in gram.chunks_exact_mut(t).enumerate() {
                for ((value, &c), pot) in row.iter_mut().zip(candidates).zip(&mut potential) {
                    *value = (norms[a + r] + norms[c] - 2.0 * *value).max(0.0);
                    *pot += value.min(closest[a + r]);
                }
            }
            (gram, potential)
        };
        map_in_order(self.sample.len() * dim * t, 0..self.n_chunks, run)
    }

    /// closest[i] = min(closest[i], distance to candidate `t` of `scored`), chunk by chunk;
    /// returns each chunk's new Σ closest.
    fn update(&self, closest: &mut [f64], scored: &Scored, t: usize) -> Vec<f64> {
        let width = scored.first().map_or(1, |(_, p)| p.len());
        let run = |(closest, (dists, _)): (&mut [f64], &(Vec<f64>, Vec<f64>))| {
            let mut sum = 0.0f64;
            for (c, row) in closest.iter_mut().zip(dists.chunks_exact(width)) {
                *c = c.min(row[t]);
                sum += *c;
            }
            sum
        };
        let chunks: Vec<_> = closest.chunks_mut(self.per).zip(scored).collect();
        map_in_order(self.sample.len() * self.sample.dim(), chunks, run)
    }

    /// `trials` candidates, each drawn with probability proportional to its distance to the
    /// centers so far: the chunk whose running total passes the target, then the row within it.
    fn draw(&self, rng: &mut SplitMix64, chunk_sums: &[f64], closest: &[f64]) -> Vec<usize> {
        let potential: f64 = chunk_sums.iter().sum();
        let mut candidates = Vec::with_capacity(self.trials);
        for _ in 0..self.trials {
            let target = rng.next_f64() * potential;
            let mut acc = 0.0;
            let mut chunk = 0;
            while chunk + 1 < self.n_chunks && acc + chunk_sums[chunk] <= target {
                acc += chunk_sums[chunk];
                chunk += 1;
            }
            let mut pick = self.sample.len() - 1;
            for (i, &d) in closest.iter().enumerate().skip(self.chunk(chunk).0) {
                acc += d;
                if acc > target {
                    pick = i;
                    break;
                }
            }
            candidates.push(pick);
        }
        candidates
    }
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
    let partials = map_in_order(n * dim, 0..n_parts, run);
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

/// Every row's label, its squared distance to that center, and its lower bound on the distance
/// to every other center, kept from one Lloyd iteration to the next.
struct Assignment {
    labels: Vec<u32>,
    dists: Vec<f64>,
    lower: Vec<f64>,
}

impl Assignment {
    fn new(n: usize) -> Self {
        Assignment {
            labels: vec![0u32; n],
            dists: vec![0.0f64; n],
            lower: vec![0.0f64; n],
        }
    }

    /// Assigns every row to `centers`: in full the first time (`moved` is None), then by
    /// Hamerly's bounds for centers that moved as `moved` says.
    fn update<T: Element>(
        &mut self,
        x: Rows<'_, T>,
        x_norms: &[f64],
        centers: &[f64],
        moved: Option<Moved>,
    ) -> Result<(), GioError> {
        let centers = Rows::new("centers", centers, x.dim())?;
        let Assignment {
            labels,
            dists,
            lower,
        } = self;
        match moved {
            Some(moved) => reassign(x, x_norms, centers, moved, labels, dists, lower)?,
            None => assign_with_bounds(x, x_norms, centers, labels, dists, lower),
        }
        Ok(())
    }
}

/// The means of the clusters `labels` make; an empty cluster takes the row farthest from its
/// center (`dists`; ties to the lowest index), the next empty one the next farthest.
fn updated_centers<T: Element>(
    x: Rows<'_, T>,
    labels: &[u32],
    dists: &[f64],
    k: usize,
) -> Vec<f64> {
    let dim = x.dim();
    let (sums, counts) = centroid_sums(x, labels, k);
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
    let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
    if !empty.is_empty() {
        let mut far: Vec<usize> = (0..x.len()).collect();
        far.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]).then(a.cmp(&b)));
        for (c, &row) in empty.iter().zip(&far) {
            updated[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(x.row(row))
                .for_each(|(o, v)| *o = v.to_f64());
        }
    }
    updated
}

/// One run of Lloyd's algorithm from `centers`.
fn lloyd<T: Element>(
    x: Rows<'_, T>,
    x_norms: &[f64],
    mut centers: Vec<f64>,
    params: &ValidKMeansParams,
    tol: f64,
    poll: &mut dyn FnMut(usize, f64) -> Result<(), GioError>,
) -> Result<KMeansFit, GioError> {
    let mut now = Assignment::new(x.len());
    let mut previous = vec![u32::MAX; x.len()];
    // None before the first assignment: every row looks at every center.
    let mut moved: Option<Moved> = None;
    let mut n_iter = 0;
    for iteration in 1..=params.max_iter {
        n_iter = iteration;
        now.update(x, x_norms, &centers, moved)?;
        poll(iteration, now.dists.iter().sum())?;
        if now.labels == previous {
            break; // strict convergence: the last update changed nothing
        }
        let updated = updated_centers(x, &now.labels, &now.dists, params.n_clusters);
        let shifts: Vec<f64> = updated
            .chunks_exact(x.dim())
            .zip(centers.chunks_exact(x.dim()))
            .map(|(a, b)| a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>())
            .collect();
        let shift: f64 = shifts.iter().sum();
        moved = Some(Moved::new(&shifts));
        centers = updated;
        previous.copy_from_slice(&now.labels);
        if shift <= tol {
            break;
        }
    }
    // Labels and inertia for the final centers.
    if moved.is_some() {
        now.update(x, x_norms, &centers, moved)?;
    }
    Ok(KMeansFit {
        centers,
        inertia: now.dists.iter().sum(),
        labels: now.labels,
        n_iter,
    })
}

/// Rows k-means++ looks at, for `n_rows` rows and `k` clusters: `init_sample_size`, or by
/// default about the cost of one Lloyd iteration on all rows (N / candidates per center), but at
/// least 4 rows per cluster and 1024; never fewer than K nor more than N.
pub fn plus_plus_sample(n_rows: usize, k: usize, init_sample_size: usize) -> usize {
    let wanted = if init_sample_size > 0 {
        init_sample_size
    } else {
        (n_rows / plus_plus_trials(k))
            .max(k.saturating_mul(4))
            .max(1024)
    };
    wanted.max(k).min(n_rows)
}

/// The working set of `kmeans` on `n_rows` rows of `dim` values of `itemsize` bytes (see
/// `crate::memory`): per row its label, previous label, distance, bound and norm, and the copy of
/// the rows a bounded reassignment gathers (at most all of them); the k-means++ sample with its
/// per-chunk distances to the candidates; the centers, their packed float32 copy and shifts; the
/// per-chunk centroid sums of an update (`UPDATE_PARTIALS_BYTES`, or one K × d block).
pub fn fit_working_set(
    n_rows: usize,
    dim: usize,
    n_clusters: usize,
    itemsize: usize,
    init_sample_size: usize,
) -> usize {
    let k = n_clusters.max(1);
    let trials = plus_plus_trials(k);
    let sample = plus_plus_sample(n_rows, k, init_sample_size);
    let block = memory::bytes(&[&[8, k, dim]]);
    let partials = block
        .max(UPDATE_PARTIALS_BYTES)
        .min(block.saturating_mul(32));
    memory::bytes(&[
        &[memory::BASE_BYTES],
        &[n_rows, dim.saturating_mul(itemsize).saturating_add(56)],
        &[
            sample,
            memory::bytes(&[&[dim, itemsize], &[16, trials + 1]]),
        ],
        &[36, k, dim],
        &[partials],
    ])
}

/// The working set of `predict` for `n_rows` rows and `n_clusters` centers of `dim` values: per
/// row its label, distance, bound and norm; the centers' packed copy, norms and exact-distance
/// rows.
pub fn predict_working_set(n_rows: usize, dim: usize, n_clusters: usize) -> usize {
    memory::bytes(&[&[memory::BASE_BYTES], &[32, n_rows], &[40, n_clusters, dim]])
}

/// The nearest of `centers` for every row of `x` and the squared distance to it (`assign`, with
/// the row norms it needs).
pub fn predict<T: Element>(
    x: Rows<'_, T>,
    centers: Rows<'_, f64>,
) -> Result<(Vec<u32>, Vec<f64>), GioError> {
    if centers.dim() != x.dim() {
        return Err(GioError::invalid(
            "centers",
            format!("have {} columns but X has {}", centers.dim(), x.dim()),
        ));
    }
    let norms = row_norms(x);
    let mut labels = vec![0u32; x.len()];
    let mut dists = vec![0.0f64; x.len()];
    assign(x, &norms, centers, &mut labels, &mut dists);
    Ok((labels, dists))
}

/// Fits K-Means: `n_init` runs from different seeds, the lowest inertia kept (ties: the first).
/// `poll(iteration, inertia)` is called once per Lloyd iteration; its error stops the fit.
pub fn kmeans<T: Element>(
    x: Rows<'_, T>,
    params: &ValidKMeansParams,
    poll: &mut dyn FnMut(usize, f64) -> Result<(), GioError>,
) -> Result<KMeansFit, GioError> {
    let k = params.n_clusters;
    if k > x.len() {
        return Err(GioError::invalid(
            "n_clusters",
            format!("{k} clusters need at least {k} rows, X has {}", x.len()),
        ));
    }
    if let KMeansInit::Centers { dim, .. } = params.init {
        if dim != x.dim() {
            return Err(GioError::invalid(
                "init",
                format!("has {dim} columns but X has {}", x.dim()),
            ));
        }
    }
    let x_norms = row_norms(x);
    let tol = params.tol * mean_variance(x);
    let sample = plus_plus_sample(x.len(), k, params.init_sample_size);
    let mut best: Option<KMeansFit> = None;
    let runs = match params.init {
        KMeansInit::Centers { .. } => 1,
        _ => params.n_init,
    };
    for run in 0..runs {
        let mut rng =
            SplitMix64::new(params.seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let centers = match &params.init {
            KMeansInit::KMeansPlusPlus => kmeans_plus_plus(x, k, sample, &mut rng),
            KMeansInit::Random => random_rows(x, k, &mut rng),
            KMeansInit::Centers { values, .. } => values.clone(),
        };
        let fit = lloyd(x, &x_norms, centers, params, tol, poll)?;
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    Ok(best.expect("n_init >= 1"))
}
