//! Gradient descent on the relaxed candidate v, with the reference's step rule
//! v ← v − (lr · scale) · ∇_v KL(X ‖ W ∪ {v}).

use crate::error::GioError;
use crate::kl::{GradientWork, KlParams, KlState};
use crate::rows::{Element, Rows};

/// Reusable buffers for descents, so the selection loop does not allocate per step.
#[derive(Debug, Default)]
pub struct DescentWork {
    sums: Vec<f64>,
    kernel: GradientWork,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// The reference's `scale_factor="auto"`: ‖v‖ / ‖∇_v‖ at the starting v and selection.
/// Infinite or NaN when the gradient vanishes there.
pub fn auto_scale_factor<T: Element>(
    state: &KlState<'_, T>,
    v: &[f64],
    work: &mut DescentWork,
) -> f64 {
    work.sums.resize(v.len(), 0.0);
    state.gradient(v, &mut work.kernel, &mut work.sums);
    norm(v) / norm(&work.sums)
}

/// Runs `steps` descent steps on `v` in place, for the state's selection.
pub fn descend<T: Element>(
    state: &KlState<'_, T>,
    v: &mut [f64],
    scale_factor: f64,
    lr: f64,
    steps: usize,
    work: &mut DescentWork,
    poll: &mut dyn FnMut() -> Result<(), GioError>,
) -> Result<(), GioError> {
    descend_many(
        state,
        v,
        &[state.selection_size()],
        scale_factor,
        lr,
        steps,
        work,
        poll,
    )
}

/// Runs `steps` descent steps on several points at once (the rows of `vs`), point b as if the
/// selection had `sizes[b]` rows. Each X row is read once per step for all points; each point
/// ends bit-identical to a descent of its own. Only valid where the gradient does not depend
/// on which rows are selected (without `discard_nearest_for_xy`), or for the current size.
/// `poll` is called between steps so a host can interrupt; its error aborts the descent.
#[allow(clippy::too_many_arguments)]
pub fn descend_many<T: Element>(
    state: &KlState<'_, T>,
    vs: &mut [f64],
    sizes: &[usize],
    scale_factor: f64,
    lr: f64,
    steps: usize,
    work: &mut DescentWork,
    poll: &mut dyn FnMut() -> Result<(), GioError>,
) -> Result<(), GioError> {
    let dim = state.target().dim();
    assert_eq!(vs.len(), sizes.len() * dim);
    work.sums.resize(vs.len(), 0.0);
    let step = lr * scale_factor;
    for _ in 0..steps {
        poll()?;
        state.gradient_sums(vs, &mut work.kernel, &mut work.sums);
        for ((v, sums), &m) in vs
            .chunks_exact_mut(dim)
            .zip(work.sums.chunks_exact(dim))
            .zip(sizes)
        {
            let factor = state.gradient_factor(m);
            for (vj, &sj) in v.iter_mut().zip(sums) {
                *vj -= step * (sj * factor);
            }
        }
    }
    Ok(())
}

/// `steps` descent steps from `v` for target `x` and selection `w`, in one call (the reference's
/// `gradient_descend`): v afterwards and the scale factor used (`None`: the automatic one, so
/// that `steps = 0` gives just the scale factor).
#[allow(clippy::too_many_arguments)]
pub fn descend_from<T: Element>(
    x: Rows<'_, T>,
    w: Rows<'_, T>,
    mut v: Vec<f64>,
    scale_factor: Option<f64>,
    steps: usize,
    lr: f64,
    discard_nearest_for_xy: bool,
    poll: &mut dyn FnMut() -> Result<(), GioError>,
) -> Result<(Vec<f64>, f64), GioError> {
    if v.len() != x.dim() {
        return Err(GioError::invalid(
            "v",
            format!("has {} values but X has {} columns", v.len(), x.dim()),
        ));
    }
    if discard_nearest_for_xy && w.is_empty() {
        return Err(GioError::invalid(
            "W",
            "needs at least one row with discard_nearest_for_xy=True",
        ));
    }
    let state = KlState::without_target_term(x, w, KlParams::new(1, discard_nearest_for_xy))?;
    let mut work = DescentWork::default();
    let scale = match scale_factor {
        Some(s) => s,
        None => auto_scale_factor(&state, &v, &mut work),
    };
    descend(&state, &mut v, scale, lr, steps, &mut work, poll)?;
    Ok((v, scale))
}
