//! Squared Euclidean distances: by exact differences where one pair at a time is needed, and
//! from Gram tiles (‖a‖²+‖b‖²−2a·b, which cancels for near points) only with a rigorous error
//! bound and exact recomputation of every pair the bound cannot settle.
//! Also nearest-row scans and per-row k-th neighbour distances. Everything is computed in f64
//! whatever the stored type.

use crate::parallel::{map_chunks_mut, map_row_chunks};
use crate::rows::{Element, Rows};
pub use crate::simd::sq_dist;
use crate::simd::{self, center_scores_f32, center_scores_from_f32, dot, dot_block, PackedCenters};

/// The reference clips squared distances to this range before taking square roots.
pub const CLIP_LOW: f64 = 1e-10;
pub const CLIP_HIGH: f64 = 1e20;

/// Clips a squared distance as the reference does (`jnp.clip(s, 1e-10, 1e20)`).
#[inline(always)]
pub fn clip_sq(s: f64) -> f64 {
    s.clamp(CLIP_LOW, CLIP_HIGH)
}

/// Index of the row of `pool` nearest to `v` among rows with `used[i] == false`
/// (ties go to the lowest index), with its squared distance. `None` when every row is used.
pub fn nearest_unused<T: Element>(
    pool: Rows<'_, T>,
    v: &[f64],
    used: &[bool],
) -> Option<(usize, f64)> {
    debug_assert_eq!(used.len(), pool.len());
    let per_chunk = map_row_chunks(pool.len(), pool.dim(), |start, end| {
        simd::nearest_unused(
            v,
            pool.slice(start, end).data(),
            pool.dim(),
            &used[start..end],
        )
        .map(|(i, s)| (start + i, s))
    });
    // Chunks are in index order, so a strict `<` keeps the lowest index on ties.
    per_chunk
        .into_iter()
        .flatten()
        .fold(None, |best: Option<(usize, f64)>, cand| match best {
            Some((_, b)) if cand.1 >= b => best,
            _ => Some(cand),
        })
}

/// Target rows handled together: their Gram rows (BLOCK × n values) are formed by 4×4 tiles.
const BLOCK: usize = 16;

/// ‖x_i‖² of every row, in f64, in parallel chunks (each value from `dot`, so identical for any
/// thread count): the norms every Gram-form distance needs.
pub fn row_norms<T: Element>(x: Rows<'_, T>) -> Vec<f64> {
    map_row_chunks(x.len(), x.dim(), |start, end| {
        (start..end)
            .map(|i| dot(x.row(i), x.row(i)))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Upper bound on |s̃ − s| / (‖a‖² + ‖b‖²) for a squared distance formed as ‖a‖² + ‖b‖² − 2a·b in
/// f64 from `dim`-long rows: (2·dim + 8) units of roundoff (dot products and norms err by at most
/// dim·u relative to the norms, the final additions by 4u).
pub fn expansion_error_factor(dim: usize) -> f64 {
    (dim as f64 + 4.0) * f64::EPSILON
}

/// Bound on |s̃ − s| / (‖a‖² + ‖b‖²) for the float32 Gram-form score of the micro-kernels
/// (`simd::nearest_centers_f32`, `simd::center_scores_f32`), inputs rounded to float32 included:
/// (2·dim + 16) float32 units of roundoff, doubled for safety. Add an absolute
/// `F32_UNDERFLOW_PER_DIM · dim` for values that underflow in float32.
pub fn f32_expansion_error_factor(dim: usize) -> f64 {
    2.0 * (dim as f64 + 8.0) * f32::EPSILON as f64
}

/// Per dimension, an absolute bound on the float32 scores' error from values that underflow.
pub const F32_UNDERFLOW_PER_DIM: f64 = 7.52316384526264e-37; // 2^-120

/// Squared norms up to which float32 scores are used: they (at most about 4× this) then stay far
/// from float32's overflow.
pub const F32_SAFE_NORM: f64 = 1e30;

/// Rows per task of the float32 k-th neighbour search: their scores against every row (64 × n
/// float32) stay in L2 for n up to a few thousand.
const F32_BLOCK: usize = 32;

/// For every row i of `x`: the clipped (k+1)-th smallest squared distance to the rows of `x`,
/// the row itself included (so the k-th neighbour not counting itself). Requires k < n.
///
/// Fast and exact: squared distances are first formed from a Gram block (GEMM-like tiles), then
/// every row whose expansion value could be among the k+1 smallest (given the rigorous error
/// bound of `expansion_error_factor`) is recomputed from exact differences.
pub fn kth_neighbour_sq<T: Element>(x: Rows<'_, T>, k: usize) -> Vec<f64> {
    let n = x.len();
    let dim = x.dim();
    assert!(k < n, "kth_neighbour_sq needs k < n");
    let norms = row_norms(x);
    let max_norm = norms.iter().cloned().fold(0.0f64, f64::max);
    if max_norm <= F32_SAFE_NORM {
        let packed = PackedCenters::new(x.data(), dim);
        return kth_neighbour_sq_f32(x, k, &norms, max_norm, &packed);
    }
    kth_neighbour_sq_f64(x, k, &norms, max_norm)
}

/// `kth_neighbour_sq` with float64 Gram tiles for the candidates (where the values are too large
/// for float32).
fn kth_neighbour_sq_f64<T: Element>(
    x: Rows<'_, T>,
    k: usize,
    norms: &[f64],
    max_norm: f64,
) -> Vec<f64> {
    let n = x.len();
    let dim = x.dim();
    let gamma = expansion_error_factor(dim);
    let blocks = n.div_ceil(BLOCK);
    let per_block: Vec<Vec<f64>> = map_row_chunks(blocks, n * dim, |b0, b1| {
        let mut out = Vec::with_capacity((b1 - b0) * BLOCK);
        let mut gram = vec![0.0f64; BLOCK * n];
        let mut scratch = Vec::with_capacity(n);
        let mut approx: Vec<f64> = Vec::with_capacity(n);
        let mut exact = Vec::new();
        for b in b0..b1 {
            let (i0, i1) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let gram = &mut gram[..(i1 - i0) * n];
            dot_block(x.slice(i0, i1).data(), x.data(), dim, gram);
            for i in i0..i1 {
                let row = &gram[(i - i0) * n..(i - i0 + 1) * n];
                let xi = x.row(i);
                let bound = 2.0 * gamma * (norms[i] + max_norm);
                if !bound.is_finite() {
                    // Norms overflow f64: exact differences only.
                    scratch.clear();
                    scratch.extend((0..n).map(|j| sq_dist(xi, x.row(j))));
                    let (_, kth, _) = scratch.select_nth_unstable_by(k, f64::total_cmp);
                    out.push(clip_sq(*kth));
                    continue;
                }
                approx.clear();
                approx.extend(
                    row.iter()
                        .zip(norms)
                        .map(|(&g, &nj)| (norms[i] + nj - 2.0 * g).max(0.0)),
                );
                scratch.clear();
                scratch.extend_from_slice(&approx);
                let (_, kth, _) = scratch.select_nth_unstable_by(k, f64::total_cmp);
                // Every row that may be among the k+1 nearest, recomputed exactly.
                let threshold = *kth + bound;
                exact.clear();
                exact.extend(
                    (0..n)
                        // Not `a <= t`: a NaN keeps every row, so there are never fewer than k.
                        .filter(|&j| {
                            approx[j].partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater)
                        })
                        .map(|j| sq_dist(xi, x.row(j))),
                );
                let (_, kth, _) = exact.select_nth_unstable_by(k, f64::total_cmp);
                out.push(clip_sq(*kth));
            }
        }
        out
    });
    per_block.into_iter().flatten().collect()
}

/// `kth_neighbour_sq` with the float32 micro-kernel for the candidates: every row whose float32
/// score could put it among the k+1 nearest (its rigorous error bound, plus that of the exact
/// differences, allowed for on both sides) is recomputed from exact differences, so the result is
/// the same as the float64 path's.
fn kth_neighbour_sq_f32<T: Element>(
    x: Rows<'_, T>,
    k: usize,
    norms: &[f64],
    max_norm: f64,
    packed: &PackedCenters,
) -> Vec<f64> {
    let n = x.len();
    let dim = x.dim();
    let padded = packed.padded_len();
    let relative = f32_expansion_error_factor(dim) + 2.0 * expansion_error_factor(dim);
    let absolute = F32_UNDERFLOW_PER_DIM * dim as f64;
    let blocks = n.div_ceil(F32_BLOCK);
    let per_block: Vec<Vec<f64>> = map_row_chunks(blocks, n * dim, |b0, b1| {
        let mut out = Vec::with_capacity((b1 - b0) * F32_BLOCK);
        let mut scores = vec![0.0f32; F32_BLOCK * padded];
        let mut approx: Vec<f64> = Vec::with_capacity(n);
        let mut smallest: Vec<f64> = Vec::with_capacity(k + 1);
        let mut exact = Vec::new();
        for b in b0..b1 {
            let (i0, i1) = (b * F32_BLOCK, ((b + 1) * F32_BLOCK).min(n));
            let scores = &mut scores[..(i1 - i0) * padded];
            center_scores_f32(x.slice(i0, i1).data(), packed, scores);
            for (i, row) in (i0..i1).zip(scores.chunks_exact(padded)) {
                let ni = norms[i];
                let approx_of = |s: f32| (s as f64 + ni).max(0.0);
                // The (k+1)-th smallest approximate value (in total order, as select_nth would
                // find it): a short sorted list for small k, one scan without copies.
                let kth = if k < SMALL_K {
                    smallest.clear();
                    for &s in &row[..n] {
                        let a = approx_of(s);
                        if smallest.len() <= k {
                            let at = smallest.partition_point(|v| v.total_cmp(&a).is_le());
                            smallest.insert(at, a);
                        } else if a.total_cmp(&smallest[k]).is_lt() {
                            let at = smallest.partition_point(|v| v.total_cmp(&a).is_le());
                            smallest.insert(at, a);
                            smallest.pop();
                        }
                    }
                    smallest[k]
                } else {
                    approx.clear();
                    approx.extend(row[..n].iter().map(|&s| approx_of(s)));
                    *approx.select_nth_unstable_by(k, f64::total_cmp).1
                };
                let error = relative * (ni + max_norm) + absolute;
                let threshold = kth + 2.0 * error;
                let xi = x.row(i);
                exact.clear();
                exact.extend(
                    (0..n)
                        // Not `a <= t`: a NaN keeps every row, so there are never fewer than k.
                        .filter(|&j| {
                            approx_of(row[j]).partial_cmp(&threshold)
                                != Some(std::cmp::Ordering::Greater)
                        })
                        .map(|j| sq_dist(xi, x.row(j))),
                );
                let (_, kth, _) = exact.select_nth_unstable_by(k, f64::total_cmp);
                out.push(clip_sq(*kth));
            }
        }
        out
    });
    per_block.into_iter().flatten().collect()
}

/// Below this k the (k+1)-th smallest candidate score is found with a short sorted list.
const SMALL_K: usize = 32;

/// Most float32 scores (n × n rounded up to 16) `kth_neighbour_sq_symmetric` keeps at once.
const SYMMETRIC_MAX_SCORES: usize = 1 << 23;
/// Earlier rows whose strips `kth_neighbour_sq_symmetric` reads together.
const STRIP_GROUP: usize = 8;

/// `kth_neighbour_sq`, the same values, from about half the float32 tiles: the scores of X
/// against itself are symmetric, so each block of rows is scored against the rows from its own
/// block on only, and reads the rest of its rows from earlier blocks' scores (transposed). Keeps
/// all n × n scores: falls back to `kth_neighbour_sq` above `SYMMETRIC_MAX_SCORES` of them.
pub fn kth_neighbour_sq_symmetric<T: Element>(x: Rows<'_, T>, k: usize) -> Vec<f64> {
    let (n, dim) = (x.len(), x.dim());
    assert!(k < n, "kth_neighbour_sq needs k < n");
    let norms = row_norms(x);
    let max_norm = norms.iter().cloned().fold(0.0f64, f64::max);
    let padded = n.div_ceil(16) * 16;
    if max_norm > F32_SAFE_NORM || n.saturating_mul(padded) > SYMMETRIC_MAX_SCORES {
        return kth_neighbour_sq(x, k);
    }
    let packed = PackedCenters::new(x.data(), dim);
    let mut scores = vec![0.0f32; n * padded];
    // Block b (rows i0.., i0 a multiple of 16) against the rows from i0 on; disjoint rows.
    map_chunks_mut(
        n * n * dim / 2,
        &mut scores,
        F32_BLOCK * padded,
        |(b, part)| {
            let i0 = b * F32_BLOCK;
            let rows = x.slice(i0, i0 + part.len() / padded);
            center_scores_from_f32(rows.data(), &packed, i0, part);
        },
    );
    // Score (i, j) estimates ‖x_i − x_j‖² − ‖x_i‖² within relative · (‖x_i‖² + max_norm) +
    // absolute; read transposed, it stands for (j, i): bound every pair by the larger one.
    let relative = f32_expansion_error_factor(dim) + 2.0 * expansion_error_factor(dim);
    let error = relative * 2.0 * max_norm + F32_UNDERFLOW_PER_DIM * dim as f64;
    let scores = &scores;
    let per_block = map_row_chunks(n.div_ceil(F32_BLOCK), n * dim, |b0, b1| {
        let mut out = Vec::with_capacity((b1 - b0) * F32_BLOCK);
        let mut approx = vec![0.0f64; F32_BLOCK * n];
        let mut scratch = RowKth::default();
        for b in b0..b1 {
            let (i0, i1) = (b * F32_BLOCK, ((b + 1) * F32_BLOCK).min(n));
            let rows = i1 - i0;
            // Columns before i0 from the earlier blocks' rows (row j holds (j, i) + ‖x_j‖²), 8
            // rows' strips copied at a time: their loads (8 KB apart, no prefetcher follows
            // them) then overlap...
            let mut strips = [[0.0f32; F32_BLOCK]; STRIP_GROUP];
            for j0 in (0..i0).step_by(STRIP_GROUP) {
                let j1 = (j0 + STRIP_GROUP).min(i0);
                for (strip, j) in strips.iter_mut().zip(j0..j1) {
                    strip[..rows].copy_from_slice(&scores[j * padded + i0..j * padded + i1]);
                }
                for (strip, j) in strips.iter().zip(j0..j1) {
                    for (r, &s) in strip[..rows].iter().enumerate() {
                        approx[r * n + j] = (s as f64 + norms[j]).max(0.0);
                    }
                }
            }
            // ...the others from the block's own rows.
            for (r, row) in scores[i0 * padded..i1 * padded]
                .chunks_exact(padded)
                .enumerate()
            {
                let ni = norms[i0 + r];
                for (a, &s) in approx[r * n + i0..(r + 1) * n].iter_mut().zip(&row[i0..n]) {
                    *a = (s as f64 + ni).max(0.0);
                }
            }
            for (r, row_approx) in approx.chunks_exact(n).take(rows).enumerate() {
                out.push(scratch.exact_kth(x, i0 + r, k, row_approx, error));
            }
        }
        out
    });
    per_block.into_iter().flatten().collect()
}

/// Scratch for the exact k-th neighbour distance of one row from approximate values.
#[derive(Default)]
struct RowKth {
    smallest: Vec<f64>,
    exact: Vec<f64>,
}

impl RowKth {
    /// The clipped (k+1)-th smallest exact squared distance from row i to the rows of `x`, given
    /// approximations `approx` (one per row) within `error` of the exact values: every row whose
    /// approximation could put it among the k+1 nearest is recomputed exactly.
    fn exact_kth<T: Element>(
        &mut self,
        x: Rows<'_, T>,
        i: usize,
        k: usize,
        approx: &[f64],
        error: f64,
    ) -> f64 {
        let kth = if k < SMALL_K {
            // A short sorted list (in total order, as select_nth would find it).
            let smallest = &mut self.smallest;
            smallest.clear();
            for &a in approx {
                if smallest.len() <= k || a.total_cmp(&smallest[k]).is_lt() {
                    let at = smallest.partition_point(|v| v.total_cmp(&a).is_le());
                    smallest.insert(at, a);
                    smallest.truncate(k + 1);
                }
            }
            smallest[k]
        } else {
            self.exact.clear();
            self.exact.extend_from_slice(approx);
            *self.exact.select_nth_unstable_by(k, f64::total_cmp).1
        };
        let threshold = kth + 2.0 * error;
        let xi = x.row(i);
        self.exact.clear();
        self.exact.extend(
            approx
                .iter()
                .enumerate()
                // Not `a <= t`: a NaN keeps every row, so there are never fewer than k.
                .filter(|&(_, &a)| a.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater))
                .map(|(j, _)| sq_dist(xi, x.row(j))),
        );
        clip_sq(*self.exact.select_nth_unstable_by(k, f64::total_cmp).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    #[test]
    fn sq_dist_matches_naive_for_all_tail_lengths() {
        for d in 1..70 {
            let a: Vec<f64> = (0..d).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..d).map(|i| (i as f32 * 0.11).cos()).collect();
            let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
            let got = sq_dist(&a, &b);
            assert!(
                (got - naive(&a, &b64)).abs() <= 1e-12 * (1.0 + got),
                "d={d}"
            );
        }
    }

    #[test]
    fn nearest_unused_breaks_ties_to_lowest_index_and_skips_used() {
        let pool = [1.0f64, 0.0, -1.0, 0.0, 1.0, 0.0, 5.0, 5.0];
        let rows = Rows::new("pool", &pool, 2).unwrap();
        let v = [0.0, 0.0];
        assert_eq!(nearest_unused(rows, &v, &[false; 4]).unwrap().0, 0);
        assert_eq!(
            nearest_unused(rows, &v, &[true, false, false, false])
                .unwrap()
                .0,
            1
        );
        assert_eq!(
            nearest_unused(rows, &v, &[true, true, false, false])
                .unwrap()
                .0,
            2
        );
        assert!(nearest_unused(rows, &v, &[true; 4]).is_none());
    }

    /// Every distance by exact differences (the same kernel), sorted: the reference answer.
    fn brute_kth(x: &[f64], d: usize, k: usize) -> Vec<f64> {
        let n = x.len() / d;
        (0..n)
            .map(|i| {
                let mut row: Vec<f64> = (0..n)
                    .map(|j| sq_dist(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]))
                    .collect();
                row.sort_by(f64::total_cmp);
                clip_sq(row[k])
            })
            .collect()
    }

    #[test]
    fn kth_neighbour_is_exact_where_the_expansion_cancels() {
        // Points far from the origin with tiny spread and exact duplicates: ‖a‖²+‖b‖²−2a·b
        // loses every digit here, so the result must come from the exact recomputation.
        let d = 7;
        let mut x = Vec::new();
        for i in 0..90 {
            for c in 0..d {
                x.push(
                    1e4 + ((i * 7 + c * 3) % 11) as f64 * 1e-3
                        + if i % 9 == 0 {
                            0.0
                        } else {
                            (i as f64).sin() * 1e-6
                        },
                );
            }
        }
        x.extend_from_within(0..d * 5); // duplicates
        let rows = Rows::new("x", &x, d).unwrap();
        for k in [1, 3, 10, 94] {
            assert_eq!(kth_neighbour_sq(rows, k), brute_kth(&x, d, k), "k={k}");
            assert_eq!(both_paths(rows, k), brute_kth(&x, d, k), "k={k}");
        }
        // And ordinary data, where the expansion alone picks the neighbours.
        let y: Vec<f64> = (0..300 * 24).map(|i| ((i as f64) * 0.7548).sin()).collect();
        let rows = Rows::new("y", &y, 24).unwrap();
        for k in [1, 5, 299] {
            assert_eq!(kth_neighbour_sq(rows, k), brute_kth(&y, 24, k), "k={k}");
            assert_eq!(both_paths(rows, k), brute_kth(&y, 24, k), "k={k}");
        }
        // float32 rows: the float32 kernel's own rounding of the input changes nothing either.
        let z: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let rows = Rows::new("z", &z, d).unwrap();
        for k in [1, 3, 10, 94] {
            assert_eq!(both_paths(rows, k), brute_kth(&z64, d, k), "k={k}");
        }
    }

    /// The float64 path's result, checked equal to the float32 path's where that one runs.
    fn both_paths<T: Element>(x: Rows<'_, T>, k: usize) -> Vec<f64> {
        let norms = row_norms(x);
        let max_norm = norms.iter().cloned().fold(0.0f64, f64::max);
        let f64_path = kth_neighbour_sq_f64(x, k, &norms, max_norm);
        let packed = PackedCenters::new(x.data(), x.dim());
        assert_eq!(
            kth_neighbour_sq_f32(x, k, &norms, max_norm, &packed),
            f64_path
        );
        assert_eq!(kth_neighbour_sq_symmetric(x, k), f64_path, "symmetric");
        f64_path
    }

    #[test]
    fn kth_neighbour_counts_self_and_duplicates() {
        // 1-D points 0, 0, 1, 3: row 0's sorted squared distances are 0, 0, 1, 9.
        let x = [0.0f64, 0.0, 1.0, 3.0];
        let rows = Rows::new("x", &x, 1).unwrap();
        assert_eq!(
            kth_neighbour_sq(rows, 1),
            vec![CLIP_LOW, CLIP_LOW, 1.0, 4.0]
        );
        assert_eq!(kth_neighbour_sq(rows, 2), vec![1.0, 1.0, 1.0, 9.0]);
    }
}
