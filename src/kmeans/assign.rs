//! The full assignment step: every row's nearest center by Gram-form kernels with a rigorous
//! roundoff bound, exact differences where the bound cannot call it.

use crate::distance::{
    expansion_error_factor, f32_expansion_error_factor, sq_dist, F32_SAFE_NORM,
    F32_UNDERFLOW_PER_DIM,
};
use crate::parallel::map_in_order;
use crate::rows::{Element, Rows};
use crate::simd::{
    dot, dot_block, nearest_centers_f32, sq_dists, PackedCenters, MAX_PACKED_CENTERS,
};

/// Target rows per assignment task (their float32 rows stay in L2 while every center panel
/// passes) and centers per float64 tile: a tile's Gram block (256 × 256 f64) stays in L2.
pub(super) const ASSIGN_ROWS: usize = 256;
const ASSIGN_CENTERS: usize = 256;

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
pub(super) fn assign_with_bounds<T: Element>(
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
