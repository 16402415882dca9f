//! The exact k nearest reference rows of one query, found from approximate squared distances
//! with a rigorous error bound: a bounded selection on the approximate values, then exact
//! distances (`sq_dist`) only for the rows the bound cannot place.
//!
//! With `margin` twice the bound on |approximate − exact| and `kth` the k-th smallest
//! approximate value: a row below `kth − margin` is among the k nearest for certain (fewer than
//! k rows can be at or below its exact distance), a row above `kth + margin` for certain not
//! (k rows are at or below `kth` approximately, so exactly at or below it plus the bound). Only
//! the rows between are recomputed and ordered by (exact distance, row): ties to the lower row.

use std::cmp::Ordering;

/// A value the approximate pass stores per reference row. `distance(value, query norm)` is the
/// approximate squared distance, non-decreasing in the value, never NaN.
pub(crate) trait Approx: Copy + PartialOrd {
    const INFINITY: Self;
    fn distance(self, q_norm: f64) -> f64;
    fn total_order(&self, other: &Self) -> Ordering;
}

/// A float32 Gram-form score ‖r‖² − 2q·r (the query's own norm not yet added).
impl Approx for f32 {
    const INFINITY: Self = f32::INFINITY;
    #[inline(always)]
    fn distance(self, q_norm: f64) -> f64 {
        (f64::from(self) + q_norm).max(0.0)
    }
    fn total_order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// An approximate squared distance itself (clamped at 0, so never NaN).
impl Approx for f64 {
    const INFINITY: Self = f64::INFINITY;
    #[inline(always)]
    fn distance(self, _q_norm: f64) -> f64 {
        self
    }
    fn total_order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// Buffers reused from query to query.
pub(crate) struct NearestScratch<S> {
    keys: Vec<S>,
    candidates: Vec<(S, u32)>,
    exact: Vec<(f64, u32)>,
}

impl<S> Default for NearestScratch<S> {
    fn default() -> Self {
        NearestScratch {
            keys: Vec::new(),
            candidates: Vec::new(),
            exact: Vec::new(),
        }
    }
}

/// One query's approximate values over the reference rows, in two consecutive parts (row j of
/// the second part is reference row `first.len() + j`).
pub(crate) struct QueryRow<'a, S> {
    pub parts: [&'a mut [S]; 2],
    pub q_norm: f64,
    /// Twice the bound on |approximate distance − `exact(j)`| for every row.
    pub margin: f64,
    /// The query's own reference row, never counted.
    pub own: Option<usize>,
}

/// How many of the query's k nearest reference rows (by `exact`, ties to the lower row) come
/// before row `counted_below`. Requires 1 <= k < rows (own excluded).
pub(crate) fn count_nearest_below<S: Approx>(
    row: QueryRow<'_, S>,
    k: usize,
    counted_below: usize,
    exact: impl Fn(usize) -> f64,
    scratch: &mut NearestScratch<S>,
) -> u32 {
    let QueryRow {
        parts,
        q_norm,
        margin,
        own,
    } = row;
    if let Some(own) = own {
        let first = parts[0].len();
        let (part, at) = if own < first {
            (0, own)
        } else {
            (1, own - first)
        };
        parts[part][at] = S::INFINITY;
    }
    let parts = [&*parts[0], &*parts[1]];
    let bound = sampled_upper_bound(parts, k, &mut scratch.keys);
    collect_at_most(parts, bound, &mut scratch.candidates);
    let kth = scratch
        .candidates
        .select_nth_unstable_by(k - 1, |a, b| a.0.total_order(&b.0))
        .1
         .0
        .distance(q_norm);
    let (sure_below, uncertain_above) = (kth - margin, kth + margin);
    // Rows past `bound` were left out: rescan if one of them could still be needed.
    if bound.distance(q_norm).partial_cmp(&uncertain_above) != Some(Ordering::Greater) {
        collect_at_most(parts, S::INFINITY, &mut scratch.candidates);
    }
    let (mut sure, mut counted) = (0, 0);
    scratch.exact.clear();
    for &(s, j) in &scratch.candidates {
        let (a, j) = (s.distance(q_norm), j as usize);
        if Some(j) == own || a.partial_cmp(&uncertain_above) == Some(Ordering::Greater) {
            continue;
        }
        if a < sure_below {
            sure += 1;
            counted += usize::from(j < counted_below);
        } else {
            scratch.exact.push((exact(j), j as u32));
        }
    }
    let rest = k - sure;
    let by_distance_then_row =
        |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let (nearer, last, _) = scratch
        .exact
        .select_nth_unstable_by(rest - 1, by_distance_then_row);
    let below = |e: &(f64, u32)| (e.1 as usize) < counted_below;
    (counted + nearer.iter().filter(|e| below(e)).count() + usize::from(below(last))) as u32
}

/// An upper bound on the k-th smallest value: the k-th smallest of an evenly strided sample of
/// about √(rows·k) values (infinity when that would be every row). Only speed depends on it.
fn sampled_upper_bound<S: Approx>(parts: [&[S]; 2], k: usize, keys: &mut Vec<S>) -> S {
    let n = parts[0].len() + parts[1].len();
    let sample = ((n as f64 * k as f64).sqrt() as usize).clamp(k, n);
    let stride = n / sample;
    if stride <= 1 {
        return S::INFINITY;
    }
    keys.clear();
    keys.extend((0..n).step_by(stride).map(|j| at(parts, j)));
    *keys.select_nth_unstable_by(k - 1, S::total_order).1
}

#[inline(always)]
fn at<S: Copy>(parts: [&[S]; 2], j: usize) -> S {
    let first = parts[0].len();
    if j < first {
        parts[0][j]
    } else {
        parts[1][j - first]
    }
}

/// Every row whose value is at most `bound` (all rows for infinity), with its index.
fn collect_at_most<S: Approx>(parts: [&[S]; 2], bound: S, out: &mut Vec<(S, u32)>) {
    out.clear();
    let mut offset = 0;
    for part in parts {
        // Most values lie above the bound: a branch-free test per group of values skips them.
        for (g, group) in part.chunks(SCAN_GROUP).enumerate() {
            // `<=` keeps -0.0 and 0.0 both: a superset of the total order's, which is enough.
            if group.iter().fold(false, |any, &s| any | (s <= bound)) {
                let first = offset + g * SCAN_GROUP;
                let at_most = group.iter().enumerate().filter(|(_, &s)| s <= bound);
                out.extend(at_most.map(|(j, &s)| (s, (first + j) as u32)));
            }
        }
        offset += part.len();
    }
}

/// Values tested together by `collect_at_most`.
const SCAN_GROUP: usize = 32;
