//! The nearest of fitted centers for new rows.

use super::assign::assign;
use crate::distance::row_norms;
use crate::error::GioError;
use crate::rows::{Element, Rows};

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
