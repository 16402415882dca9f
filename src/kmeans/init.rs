//! The first centers: greedy k-means++ on a bounded sample, or K distinct random rows.

use crate::distance::row_norms;
use crate::parallel::{map_in_order, rows_per_chunk};
use crate::rng::SplitMix64;
use crate::rows::{Element, Rows};
use crate::simd::dot_block;

/// Greedy k-means++ on the first `sample_size` rows of a seeded permutation (at least k, at most
/// all rows). The sample is gathered into one block (in the data's type: each step streams it
/// from memory, so narrower is faster) so each step scores all its candidates with one parallel
/// pass of Gram tiles, which also sums each candidate's potential per chunk; what remains serial
/// per step is O(chunks × candidates + one chunk).
pub(super) fn kmeans_plus_plus<T: Element>(
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
pub(super) fn plus_plus_trials(k: usize) -> usize {
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

pub(super) fn random_rows<T: Element>(x: Rows<'_, T>, k: usize, rng: &mut SplitMix64) -> Vec<f64> {
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
