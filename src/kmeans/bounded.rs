//! The bounded (Hamerly) assignment: rows provably still nearest their center keep it without
//! looking at the others; the state it keeps from one Lloyd iteration to the next.

use super::assign::{assign_with_bounds, ASSIGN_ROWS};
use crate::distance::sq_dist;
use crate::error::GioError;
use crate::parallel::map_in_order;
use crate::rows::{Element, Rows};

/// How far the centers moved in the last update: the largest shift, its center, and the
/// largest shift of any other center (each rounded up), so a row's bound to "every other
/// center" drops by the largest shift among the centers that are not its own.
#[derive(Clone, Copy)]
pub(super) struct Moved {
    largest: f64,
    largest_center: u32,
    second: f64,
}

impl Moved {
    pub(super) fn new(shifts_sq: &[f64]) -> Self {
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

/// Every row's label, its squared distance to that center, and its lower bound on the distance
/// to every other center, kept from one Lloyd iteration to the next.
pub(super) struct Assignment {
    pub(super) labels: Vec<u32>,
    pub(super) dists: Vec<f64>,
    lower: Vec<f64>,
}

impl Assignment {
    pub(super) fn new(n: usize) -> Self {
        Assignment {
            labels: vec![0u32; n],
            dists: vec![0.0f64; n],
            lower: vec![0.0f64; n],
        }
    }

    /// Assigns every row to `centers`: in full the first time (`moved` is None), then by
    /// Hamerly's bounds for centers that moved as `moved` says.
    pub(super) fn update<T: Element>(
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
