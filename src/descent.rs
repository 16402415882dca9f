//! Gradient descent on the relaxed candidate v, with the reference's step rule
//! v ← v − (lr · scale) · ∇_v KL(X ‖ W ∪ {v}).

use crate::error::GioError;
use crate::kl::{GradientWork, KlState};
use crate::rows::Element;

/// Reusable buffers for descents, so the selection loop does not allocate per step.
#[derive(Debug, Default)]
pub struct DescentWork {
    gradient: Vec<f64>,
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
    work.gradient.resize(v.len(), 0.0);
    state.gradient(v, &mut work.kernel, &mut work.gradient);
    norm(v) / norm(&work.gradient)
}

/// Runs `steps` descent steps on `v` in place. `poll` is called between steps so a host can
/// interrupt a long descent; its error aborts the descent.
pub fn descend<T: Element>(
    state: &KlState<'_, T>,
    v: &mut [f64],
    scale_factor: f64,
    lr: f64,
    steps: usize,
    work: &mut DescentWork,
    poll: &mut dyn FnMut() -> Result<(), GioError>,
) -> Result<(), GioError> {
    work.gradient.resize(v.len(), 0.0);
    let step = lr * scale_factor;
    for _ in 0..steps {
        poll()?;
        state.gradient(v, &mut work.kernel, &mut work.gradient);
        for (vj, &gj) in v.iter_mut().zip(&work.gradient) {
            *vj -= step * gj;
        }
    }
    Ok(())
}
