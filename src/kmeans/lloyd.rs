//! Lloyd's iterations: assign, move every center to its cluster's mean (empty clusters re-seeded
//! deterministically), until nothing changes or the centers settle.

use super::bounded::{Assignment, Moved};
use super::fit::KMeansFit;
use super::params::ValidKMeansParams;
use crate::error::GioError;
use crate::parallel::map_in_order;
use crate::rows::{Element, Rows};

/// Memory for the per-chunk centroid sums of one update step.
pub(super) const UPDATE_PARTIALS_BYTES: usize = 64 << 20;

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
pub(super) fn lloyd<T: Element>(
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
