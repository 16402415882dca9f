//! The gradient loop: GIO as the reference runs it (its `GIOKL.fit`, lines 157–239). Each
//! iteration descends on a relaxed point v, snaps v to the nearest unused pool row, evaluates the
//! KL with that row and tests the stop criterion; a stop may refill the pool instead (resets).
//! Reference or fixed semantics (`Semantics`).

use std::ops::ControlFlow;

use super::{check_columns, LoopHost, Selection, StopReason, StopRule, VInit, ValidSelectParams};
use crate::descent::{auto_scale_factor, descend, descend_many, DescentWork};
use crate::distance::nearest_unused;
use crate::error::GioError;
use crate::kl::{Candidate, KlParams, KlState};
use crate::rows::{Element, Rows};

/// Runs the gradient selection of rows of `train` for target `x`, starting from `w0`.
pub fn gradient_select<T: Element>(
    train: Rows<'_, T>,
    x: Rows<'_, T>,
    w0: Rows<'_, T>,
    params: &ValidSelectParams,
    host: &mut dyn LoopHost,
) -> Result<Selection, GioError> {
    check_columns(train, x, w0)?;
    if w0.is_empty() {
        return Err(GioError::invalid(
            "D",
            "the initial selection needs at least one row",
        ));
    }
    if params.discard_nearest_for_xy && w0.len() < 2 {
        return Err(GioError::invalid(
            "D",
            "needs at least 2 rows with discard_nearest_for_xy=True (the starting KL is undefined otherwise)",
        ));
    }
    let mut run = Run::start(train, x, w0, params, host)?;
    while run.step(host)?.is_continue() {}
    run.out.v = run.v;
    Ok(run.out)
}

/// A gradient run in progress.
struct Run<'a, T: Element> {
    params: &'a ValidSelectParams,
    train: Rows<'a, T>,
    x: Rows<'a, T>,
    state: KlState<'a, T>,
    mean: Vec<f64>,
    /// Where the next descent starts; the last optimum at the end (the reference returns it).
    v: Vec<f64>,
    scale_factor: f64,
    work: DescentWork,
    ahead: AheadDescents,
    candidate: Candidate,
    stop: StopRule,
    out: Selection,
    /// KL of the last accepted row (the starting KL first).
    prev: f64,
    /// The reference's counters: `i` steps back on a reset and may go negative.
    i: i64,
    total_iter: usize,
}

impl<'a, T: Element> Run<'a, T> {
    fn start(
        train: Rows<'a, T>,
        x: Rows<'a, T>,
        w0: Rows<'_, T>,
        params: &'a ValidSelectParams,
        host: &mut dyn LoopHost,
    ) -> Result<Self, GioError> {
        let fixed = params.semantics == super::Semantics::Fixed;
        let state = KlState::new(
            x,
            w0,
            KlParams::new(params.k, params.discard_nearest_for_xy),
        )?;
        let kl_start = state.value();
        let mean = x.column_means();
        let v = match params.v_init {
            VInit::Mean | VInit::PrevOpt => mean.clone(),
            VInit::Jump => target_row(x, host)?,
        };
        let mut work = DescentWork::default();
        let scale_factor = match params.scale_factor {
            Some(s) => s,
            None => auto_scale_factor(&state, &v, &mut work),
        };
        if fixed && !scale_factor.is_finite() {
            return Err(GioError::invalid(
                "scale_factor",
                "the automatic scale factor is not finite (the gradient vanishes at the starting v); pass a number",
            ));
        }
        host.on_start(kl_start, scale_factor)?;
        Ok(Run {
            params,
            train,
            x,
            state,
            mean,
            v,
            scale_factor,
            work,
            ahead: AheadDescents::default(),
            candidate: Candidate::default(),
            stop: StopRule::new(params, train.len()),
            out: Selection::new(kl_start, scale_factor, train.len()),
            prev: kl_start,
            i: 0,
            total_iter: 0,
        })
    }

    fn fixed(&self) -> bool {
        self.params.semantics == super::Semantics::Fixed
    }

    /// One iteration: a descent, its candidate, the stop test. Returns whether to go on.
    fn step(&mut self, host: &mut dyn LoopHost) -> Result<ControlFlow<()>, GioError> {
        // Warm-up, reset or random restart: a 3× longer descent. `||` short-circuits exactly as
        // the reference's, so the restart coin is drawn only when it matters to the reference.
        let p = self.params.random_restart_prob;
        let long = self.i == 0
            || self.out.just_reset
            || ((!self.fixed() || p > 0.0) && host.random()? < p);
        self.descend(long, host)?;

        // Snap: the row leaves the pool before the stop test, so a rejected row is gone too.
        let Some((row, _)) = nearest_unused(self.train, &self.v, &self.out.used) else {
            if self.fixed() {
                self.out.stop_reason = StopReason::PoolExhausted;
                return Ok(ControlFlow::Break(()));
            }
            return Err(GioError::PoolExhausted);
        };
        self.out.used[row] = true;
        self.state
            .evaluate(self.train.row(row), &mut self.candidate);
        let kl = self.candidate.kl;
        self.out.candidate_kl.push(kl);

        if self.total_iter > self.params.max_iter {
            self.out.stop_reason = StopReason::MaxIter;
            host.on_candidate(&self.out.event(self.i, kl, false, false))?;
            return Ok(ControlFlow::Break(()));
        }
        match self.params.v_init {
            VInit::Mean => self.v.copy_from_slice(&self.mean),
            VInit::Jump => self.v = target_row(self.x, host)?,
            VInit::PrevOpt => {}
        }
        self.settle(row, kl, host)
    }

    /// The descent of one iteration, `long` (3×) or not, from `v` into `v`.
    fn descend(&mut self, long: bool, host: &mut dyn LoopHost) -> Result<(), GioError> {
        let params = self.params;
        let steps = if long {
            params.grad_desc_iter.saturating_mul(3)
        } else {
            params.grad_desc_iter
        };
        // From mean(X) the descent depends only on the selection size (the gradient ignores which
        // rows are selected unless discard_nearest_for_xy): run several upcoming sizes at once.
        let lookahead = params.v_init == VInit::Mean && !params.discard_nearest_for_xy && !long;
        let m = self.state.selection_size();
        if lookahead {
            if !self.ahead.has(m) {
                // No more descents than candidates the run can still make.
                let unused = self.out.used.iter().filter(|&&u| !u).count();
                let left = params
                    .max_iter
                    .saturating_add(2)
                    .saturating_sub(self.total_iter);
                let count = LOOKAHEAD.min(left).min(unused).max(1);
                let descent = Descent {
                    scale_factor: self.scale_factor,
                    lr: params.lr,
                    steps,
                };
                let work = &mut self.work;
                self.ahead.fill(
                    &self.state,
                    &self.mean,
                    m,
                    count,
                    &descent,
                    work,
                    &mut || host.poll(),
                )?;
            }
            self.ahead.copy_to(m, &mut self.v);
        } else {
            let (scale, lr) = (self.scale_factor, params.lr);
            let work = &mut self.work;
            descend(
                &self.state,
                &mut self.v,
                scale,
                lr,
                steps,
                work,
                &mut || host.poll(),
            )?;
        }
        self.out.descent_iters.push(steps);
        if params.record_v_opts {
            self.out.v_opts.extend_from_slice(&self.v);
        }
        Ok(())
    }

    /// The stop test on the candidate `row` of KL `kl`, and what follows: accept the row, reject
    /// it and refill the pool, or stop. Returns whether to go on.
    fn settle(
        &mut self,
        row: usize,
        kl: f64,
        host: &mut dyn LoopHost,
    ) -> Result<ControlFlow<()>, GioError> {
        let iteration = self.i;
        let mut stop = self.stop.check(kl, self.prev, self.i, &self.out);
        if stop && self.stop.keeps_stopping_row() {
            self.state.accept(&self.candidate);
            self.out.accept(row, kl);
            self.out.stop_reason = StopReason::Criterion(self.stop.criterion());
            self.out.just_reset = false;
            host.on_candidate(&self.out.event(iteration, kl, true, false))?;
            return Ok(ControlFlow::Break(()));
        }
        let mut reset = false;
        if stop {
            if self.out.just_reset {
                self.out.increases += 1;
            }
            if self.stop.may_reset(self.out.num_resets) {
                self.refill_pool();
                stop = false;
                reset = true;
            }
            self.out.just_reset = true;
        } else {
            self.out.just_reset = false;
            self.out.increases = 0;
        }
        if stop {
            self.out.stop_reason = StopReason::Criterion(self.stop.criterion());
            host.on_candidate(&self.out.event(iteration, kl, false, false))?;
            return Ok(ControlFlow::Break(()));
        }
        let accepted = !self.out.just_reset;
        if accepted {
            self.state.accept(&self.candidate);
            self.out.accept(row, kl);
            self.prev = kl;
            self.i += 1;
            self.total_iter += 1;
        }
        host.on_candidate(&self.out.event(iteration, kl, accepted, reset))?;
        Ok(ControlFlow::Continue(()))
    }

    /// A reset: every pool row is available again and the iteration counter steps back.
    fn refill_pool(&mut self) {
        self.out.num_resets += 1;
        if self.params.v_init == VInit::PrevOpt {
            self.v.copy_from_slice(&self.mean);
        }
        self.out.used.fill(false);
        self.i -= 1;
        self.stop.after_reset();
    }
}

/// Descents to come, computed together: one pass over X per step serves all of them.
const LOOKAHEAD: usize = 8;

/// The step rule of a descent: `steps` steps of v ← v − lr·scale_factor·∇.
#[derive(Clone, Copy)]
struct Descent {
    scale_factor: f64,
    lr: f64,
    steps: usize,
}

/// Results of standard-length descents from mean(X) for selection sizes
/// `first_size..first_size + count`.
#[derive(Default)]
struct AheadDescents {
    first_size: usize,
    count: usize,
    vs: Vec<f64>,
}

impl AheadDescents {
    fn has(&self, size: usize) -> bool {
        self.count > 0 && size >= self.first_size && size < self.first_size + self.count
    }

    #[allow(clippy::too_many_arguments)]
    fn fill<T: Element>(
        &mut self,
        state: &KlState<'_, T>,
        mean: &[f64],
        first_size: usize,
        count: usize,
        descent: &Descent,
        work: &mut DescentWork,
        poll: &mut dyn FnMut() -> Result<(), GioError>,
    ) -> Result<(), GioError> {
        let sizes: Vec<usize> = (first_size..first_size + count).collect();
        self.vs.clear();
        for _ in 0..count {
            self.vs.extend_from_slice(mean);
        }
        self.count = 0;
        let Descent {
            scale_factor,
            lr,
            steps,
        } = *descent;
        descend_many(
            state,
            &mut self.vs,
            &sizes,
            scale_factor,
            lr,
            steps,
            work,
            poll,
        )?;
        self.first_size = first_size;
        self.count = count;
        Ok(())
    }

    fn copy_to(&self, size: usize, v: &mut [f64]) {
        let b = size - self.first_size;
        v.copy_from_slice(&self.vs[b * v.len()..(b + 1) * v.len()]);
    }
}

/// A random target row (v_init="jump"), drawn by the host as the reference draws it.
fn target_row<T: Element>(x: Rows<'_, T>, host: &mut dyn LoopHost) -> Result<Vec<f64>, GioError> {
    let j = host.pick(x.len())?;
    if j >= x.len() {
        return Err(GioError::invalid(
            "rng",
            format!("picked row {j} of a target with {} rows", x.len()),
        ));
    }
    Ok(x.row(j).iter().map(|v| v.to_f64()).collect())
}
