//! Squared Euclidean distances by exact differences (never ‖a‖²+‖b‖²−2a·b, which cancels
//! badly for near points in float32), nearest-row scans and per-row k-th neighbour distances.
//! Everything is computed in f64 whatever the stored type.

use crate::parallel::map_row_chunks;
use crate::rows::{Element, Rows};
pub use crate::simd::sq_dist;

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
        let mut best: Option<(usize, f64)> = None;
        for (i, &is_used) in used.iter().enumerate().take(end).skip(start) {
            if is_used {
                continue;
            }
            let s = sq_dist(v, pool.row(i));
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((i, s));
            }
        }
        best
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

/// Rows of `x` compared per block of the outer loop, so each inner row is read once per block.
const BLOCK: usize = 8;

/// For every row i of `x`: the clipped (k+1)-th smallest squared distance to the rows of `x`,
/// the row itself included (so the k-th neighbour not counting itself). Requires k < n.
pub fn kth_neighbour_sq<T: Element>(x: Rows<'_, T>, k: usize) -> Vec<f64> {
    let n = x.len();
    assert!(k < n, "kth_neighbour_sq needs k < n");
    // Chunks of BLOCK rows; the work per chunk is n·d, so size chunks by that.
    let blocks = n.div_ceil(BLOCK);
    let per_block: Vec<Vec<f64>> = map_row_chunks(blocks, n * x.dim(), |b0, b1| {
        let mut out = Vec::with_capacity((b1 - b0) * BLOCK);
        let mut dist = vec![0.0f64; BLOCK * n];
        for b in b0..b1 {
            let (i0, i1) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            for j in 0..n {
                let xj = x.row(j);
                for i in i0..i1 {
                    dist[(i - i0) * n + j] = sq_dist(x.row(i), xj);
                }
            }
            for i in i0..i1 {
                let row = &mut dist[(i - i0) * n..(i - i0 + 1) * n];
                let (_, kth, _) = row.select_nth_unstable_by(k, f64::total_cmp);
                out.push(clip_sq(*kth));
            }
        }
        out
    });
    per_block.into_iter().flatten().collect()
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
