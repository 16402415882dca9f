//! Working-set estimates of a fit and of a prediction (see `crate::memory`).

use super::init::{plus_plus_sample, plus_plus_trials};
use super::lloyd::UPDATE_PARTIALS_BYTES;
use crate::memory;

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
