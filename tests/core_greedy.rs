//! The exact greedy loop against a brute-force transcription (every candidate's estimate
//! recomputed from scratch on D ∪ V ∪ {c}), its stop rules, thread-count determinism and errors.

use gio_rs::selection::{
    greedy_select, knn_kl_divergence, CandidateEvent, LoopHost, Method, SelectParams, Selection,
    Semantics, StopCriterion, StopReason,
};
use gio_rs::{GioError, Rows};

/// No random draws needed; records the events the loop reports.
#[derive(Default)]
struct Recorder {
    events: Vec<CandidateEvent>,
    fail_after: Option<usize>,
}
impl LoopHost for Recorder {
    fn random(&mut self) -> Result<f64, GioError> {
        unreachable!("the exact greedy loop draws nothing")
    }
    fn pick(&mut self, _n: usize) -> Result<usize, GioError> {
        unreachable!("the exact greedy loop draws nothing")
    }
    fn on_candidate(&mut self, event: &CandidateEvent) -> Result<(), GioError> {
        self.events.push(event.clone());
        match self.fail_after {
            Some(n) if self.events.len() >= n => Err(GioError::Aborted),
            _ => Ok(()),
        }
    }
}

/// SplitMix64 uniform values in [-1, 1) + shift.
fn data(seed: u64, rows: usize, d: usize, shift: f64) -> Vec<f64> {
    let mut state = seed;
    (0..rows * d)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0 + shift
        })
        .collect()
}

fn sq(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        .clamp(1e-10, 1e20)
}

/// Σ_i log of the r-th smallest clipped squared distance from x_i to the rows of `w`.
fn rank_log_sum(x: &[f64], w: &[Vec<f64>], d: usize, r: usize) -> f64 {
    x.chunks(d)
        .map(|xi| {
            let mut row: Vec<f64> = w.iter().map(|wj| sq(xi, wj)).collect();
            row.sort_by(f64::total_cmp);
            row[r - 1].ln()
        })
        .sum()
}

/// The unaveraged estimator straight from its formula (NaN below k rows).
fn naive_kl(x: &[f64], w: &[Vec<f64>], d: usize, k: usize) -> f64 {
    let n = x.len() / d;
    if w.len() < k {
        return f64::NAN;
    }
    let mut total = 0.0;
    for xi in x.chunks(d) {
        let mut own: Vec<f64> = x.chunks(d).map(|xj| sq(xi, xj)).collect();
        own.sort_by(f64::total_cmp);
        let mut cross: Vec<f64> = w.iter().map(|wj| sq(xi, wj)).collect();
        cross.sort_by(f64::total_cmp);
        total += (cross[k - 1].sqrt() / own[k].sqrt()).ln();
    }
    d as f64 / n as f64 * total + (w.len() as f64 / (n - 1) as f64).ln()
}

/// Brute-force greedy until the pool is exhausted: indices and KL after each row.
fn brute_force(train: &[f64], x: &[f64], w0: &[f64], d: usize, k: usize) -> (Vec<usize>, Vec<f64>) {
    brute_force_steps(train, x, w0, d, k, usize::MAX)
}

/// `brute_force` for at most `steps` rows.
fn brute_force_steps(
    train: &[f64],
    x: &[f64],
    w0: &[f64],
    d: usize,
    k: usize,
    steps: usize,
) -> (Vec<usize>, Vec<f64>) {
    let mut w: Vec<Vec<f64>> = w0.chunks(d).map(|r| r.to_vec()).collect();
    let pool: Vec<&[f64]> = train.chunks(d).collect();
    let mut used = vec![false; pool.len()];
    let (mut indices, mut trace) = (Vec::new(), Vec::new());
    let ratio = naive_ratio_scores(&pool, x, d);
    while let Some(mut best) = (0..pool.len())
        .filter(|&c| !used[c] && indices.len() < steps)
        .map(|c| {
            let mut with = w.clone();
            with.push(pool[c].to_vec());
            let r = k.min(with.len());
            (c, rank_log_sum(x, &with, d, r))
        })
        .fold(None, |best: Option<(usize, f64)>, cand| match best {
            Some((_, b)) if cand.1 >= b => best,
            _ => Some(cand),
        })
    {
        // Saturated (every candidate ties with the current sum): the largest ratio, lowest index.
        if w.len() >= k && best.1 == rank_log_sum(x, &w, d, k) {
            let pick = (0..pool.len())
                .filter(|&c| !used[c])
                .fold(None, |b: Option<usize>, c| match b {
                    Some(b) if ratio[c] <= ratio[b] => Some(b),
                    _ => Some(c),
                });
            best.0 = pick.expect("an unused row");
        }
        used[best.0] = true;
        w.push(pool[best.0].to_vec());
        indices.push(best.0);
        trace.push(naive_kl(x, &w, d, k));
    }
    (indices, trace)
}

/// w·x per pool row, w = (S_p + λI)⁻¹(μ_x − μ_p), S_p the pool covariance (divisor M),
/// λ = tr(S_p)/d (1 for a constant pool), solved by Gaussian elimination: the order greedy takes
/// rows in once every candidate ties.
fn naive_ratio_scores(pool: &[&[f64]], x: &[f64], d: usize) -> Vec<f64> {
    let mean = |rows: &mut dyn Iterator<Item = &[f64]>, n: usize| {
        let mut m = vec![0.0; d];
        rows.for_each(|r| m.iter_mut().zip(r).for_each(|(a, v)| *a += v / n as f64));
        m
    };
    let mu_p = mean(&mut pool.iter().copied(), pool.len());
    let mu_x = mean(&mut x.chunks(d), x.len() / d);
    let mut a = vec![vec![0.0; d + 1]; d];
    for r in pool {
        for i in 0..d {
            for j in 0..d {
                a[i][j] += (r[i] - mu_p[i]) * (r[j] - mu_p[j]) / pool.len() as f64;
            }
        }
    }
    let trace: f64 = (0..d).map(|i| a[i][i]).sum::<f64>() / d as f64;
    let lam = if trace > 0.0 { trace } else { 1.0 };
    for i in 0..d {
        a[i][i] += lam;
        a[i][d] = mu_x[i] - mu_p[i];
    }
    for c in 0..d {
        let p = (c..d)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, p);
        for r in 0..d {
            if r != c {
                let f = a[r][c] / a[c][c];
                let pivot = a[c].clone();
                a[r].iter_mut()
                    .zip(&pivot)
                    .skip(c)
                    .for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    let w: Vec<f64> = (0..d).map(|i| a[i][d] / a[i][i]).collect();
    pool.iter()
        .map(|r| r.iter().zip(&w).map(|(v, wi)| v * wi).sum())
        .collect()
}

fn run(
    train: &[f64],
    x: &[f64],
    w0: &[f64],
    d: usize,
    opts: &SelectParams,
) -> Result<Selection, GioError> {
    greedy_select(
        Rows::new("train", train, d).unwrap(),
        Rows::new("X", x, d).unwrap(),
        Rows::new("D", w0, d).unwrap(),
        &opts.clone().check()?,
        &mut Recorder::default(),
    )
}

/// The greedy method's options: fixed semantics, the other defaults.
fn greedy() -> SelectParams {
    SelectParams {
        method: Method::Greedy,
        semantics: Semantics::Fixed,
        ..SelectParams::default()
    }
}

fn exhaustive(k: usize) -> SelectParams {
    SelectParams {
        k,
        max_iter: usize::MAX - 1,
        stop_criterion: StopCriterion::DataSize,
        max_data_size: 1.0,
        ..greedy()
    }
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn estimator_matches_its_formula() {
    let d = 3;
    let x = data(1, 12, d, 0.0);
    let w = data(2, 9, d, 0.3);
    let rows: Vec<Vec<f64>> = w.chunks(d).map(|r| r.to_vec()).collect();
    for k in 1..=5 {
        let got = knn_kl_divergence(
            Rows::new("x", &x, d).unwrap(),
            Rows::new("y", &w, d).unwrap(),
            k,
        )
        .unwrap();
        let want = naive_kl(&x, &rows, d, k);
        assert!((got - want).abs() <= 1e-12 * (1.0 + want.abs()), "k={k}");
    }
    let few = knn_kl_divergence(
        Rows::new("x", &x, d).unwrap(),
        Rows::new("y", &w[..2 * d], d).unwrap(),
        3,
    )
    .unwrap();
    assert!(few.is_nan());
}

#[test]
fn same_choices_as_brute_force() {
    for (case, &(m, n, d, k, m0)) in [
        (15, 6, 2, 1, 0),
        (15, 6, 2, 2, 0),
        (20, 9, 3, 3, 1),
        (20, 9, 3, 4, 0),
        (12, 5, 1, 4, 2),
        (25, 10, 4, 2, 5),
        (9, 3, 2, 2, 7),
    ]
    .iter()
    .enumerate()
    {
        let seed = case as u64 * 10;
        let mut train = data(seed, m, d, 0.2);
        train.extend_from_within(0..2 * d); // exact duplicates: ties go to the lowest index
        let x = data(seed + 1, n, d, 0.0);
        let w0 = data(seed + 2, m0, d, -0.4);
        let got = run(&train, &x, &w0, d, &exhaustive(k)).unwrap();
        let (indices, trace) = brute_force(&train, &x, &w0, d, k);
        assert_eq!(got.indices, indices, "case {case}");
        assert_close(&got.kl_trace, &trace);
        assert_eq!(got.stop_reason, StopReason::PoolExhausted);
        let w0_rows: Vec<Vec<f64>> = w0.chunks(d).map(|r| r.to_vec()).collect();
        assert_close(&[got.kl_start], &[naive_kl(&x, &w0_rows, d, k)]);
    }
}

#[test]
fn same_choices_as_brute_force_on_a_pool_scored_in_many_chunks() {
    // 3000 pool rows against 60 target rows are scored in chunks of a few hundred rows; the
    // best rows (near copies of target rows) are in the last chunk, so the choice must compare
    // every chunk's best, not keep the first chunk's.
    let (m, n, d, k) = (3000, 60, 4, 2);
    let x = data(11, n, d, 0.0);
    let mut train = data(12, m - 5, d, 1.5);
    train.extend(x[..5 * d].iter().map(|v| v + 1e-3));
    let opts = SelectParams {
        max_iter: 5,
        stop_criterion: StopCriterion::DataSize,
        ..exhaustive(k)
    };
    let got = run(&train, &x, &[], d, &opts).unwrap();
    let (indices, trace) = brute_force_steps(&train, &x, &[], d, k, got.indices.len());
    assert_eq!(got.indices.len(), 6);
    assert!(indices.iter().any(|&i| i >= m - 5), "{indices:?}");
    assert_eq!(got.indices, indices);
    assert_close(&got.kl_trace, &trace);
}

#[test]
fn same_result_for_any_thread_count() {
    let d = 16;
    let train = data(5, 3000, d, 0.1);
    let x = data(6, 60, d, 0.0);
    let w0 = data(7, 40, d, 0.0);
    let opts = SelectParams {
        k: 3,
        max_iter: 30,
        stop_criterion: StopCriterion::DataSize,
        ..greedy()
    };
    let results: Vec<Selection> = [1, 2, 3]
        .iter()
        .map(|&threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| run(&train, &x, &w0, d, &opts).unwrap())
        })
        .collect();
    assert_eq!(results[0].indices.len(), 31);
    for r in &results[1..] {
        // Whole-struct equality would fail on the NaN scale factor.
        assert_eq!(r.indices, results[0].indices);
        assert_eq!(r.kl_trace, results[0].kl_trace);
        assert_eq!(r.candidate_kl, results[0].candidate_kl);
        assert_eq!(r.kl_start, results[0].kl_start);
        assert_eq!(r.stop_reason, results[0].stop_reason);
    }
}

#[test]
fn size_limits_accept_one_more_row_than_the_limit() {
    let d = 2;
    let (train, x) = (data(8, 40, d, 0.0), data(9, 10, d, 0.0));
    let opts = SelectParams {
        max_iter: 4,
        stop_criterion: StopCriterion::DataSize,
        k: 2,
        ..greedy()
    };
    let sel = run(&train, &x, &[], d, &opts).unwrap();
    assert_eq!(sel.indices.len(), 5);
    assert_eq!(sel.candidate_kl.len(), 5);
    assert_eq!(sel.stop_reason, StopReason::MaxIter);
    let opts = SelectParams {
        max_data_size: 0.1,
        max_iter: 100,
        ..opts
    };
    let sel = run(&train, &x, &[], d, &opts).unwrap();
    assert_eq!(sel.indices.len(), 5); // int(0.1 · 40) + 1
    assert_eq!(
        sel.stop_reason,
        StopReason::Criterion(StopCriterion::DataSize)
    );
}

#[test]
fn increase_rejects_the_row_that_raised_the_estimate() {
    // The target sits in one small region; the pool is a few rows there and many far away, so
    // once the near rows are used the estimate has to go up.
    let d = 2;
    let x = data(10, 8, d, 0.0);
    let mut train = data(11, 6, d, 0.0);
    train.extend(data(12, 30, d, 40.0));
    let opts = SelectParams {
        k: 2,
        stop_criterion: StopCriterion::Increase,
        ..greedy()
    };
    let sel = run(&train, &x, &[], d, &opts).unwrap();
    assert_eq!(
        sel.stop_reason,
        StopReason::Criterion(StopCriterion::Increase)
    );
    let last = *sel.candidate_kl.last().unwrap();
    assert_eq!(sel.candidate_kl.len(), sel.indices.len() + 1);
    assert!(last > *sel.kl_trace.last().unwrap());
    // Before the selection reaches k rows the estimate is NaN and cannot stop the run.
    assert!(sel.kl_trace[0].is_nan() && sel.kl_trace[1].is_finite());
    for pair in sel.kl_trace[1..].windows(2) {
        assert!(pair[1] <= pair[0]);
    }
}

#[test]
fn min_kl_keeps_the_row_that_reached_it() {
    let d = 2;
    let (train, x) = (data(13, 50, d, 0.0), data(14, 12, d, 0.0));
    let free = run(&train, &x, &[], d, &exhaustive(1)).unwrap();
    let target = free.kl_trace[6];
    let opts = SelectParams {
        k: 1,
        stop_criterion: StopCriterion::MinKl,
        min_kl: target + 1e-12,
        ..greedy()
    };
    let sel = run(&train, &x, &[], d, &opts).unwrap();
    let first_below = free
        .kl_trace
        .iter()
        .position(|&v| v < target + 1e-12)
        .unwrap();
    assert_eq!(sel.indices, free.indices[..=first_below]);
    assert_eq!(sel.stop_reason, StopReason::Criterion(StopCriterion::MinKl));
}

#[test]
fn sequential_increase_tolerance_accepts_the_allowed_increases() {
    let d = 2;
    let x = data(15, 8, d, 0.0);
    let mut train = data(16, 5, d, 0.0);
    train.extend(data(17, 30, d, 30.0));
    let opts = SelectParams {
        k: 1,
        stop_criterion: StopCriterion::SequentialIncreaseTolerance,
        max_sequential_increases: 2,
        ..greedy()
    };
    let sel = run(&train, &x, &[], d, &opts).unwrap();
    let free = run(&train, &x, &[], d, &exhaustive(1)).unwrap();
    // The run is the free run cut where a third consecutive increase appears.
    let mut run_of_increases = 0;
    let mut prev = f64::NAN;
    let mut stop_at = None;
    for (j, &kl) in free.kl_trace.iter().enumerate() {
        run_of_increases = if kl > prev { run_of_increases + 1 } else { 0 };
        if run_of_increases > 2 {
            stop_at = Some(j);
            break;
        }
        prev = kl;
    }
    let stop_at = stop_at.expect("the far rows must raise the estimate");
    assert_eq!(sel.indices, free.indices[..stop_at]);
    assert_eq!(sel.candidate_kl.len(), stop_at + 1);
}

#[test]
fn min_difference_stops_when_the_gain_is_small() {
    let d = 3;
    let (train, x) = (data(18, 60, d, 0.0), data(19, 15, d, 0.0));
    let free = run(&train, &x, &[], d, &exhaustive(2)).unwrap();
    let opts = SelectParams {
        k: 2,
        stop_criterion: StopCriterion::MinDifference,
        min_difference: 0.05,
        ..greedy()
    };
    let sel = run(&train, &x, &[], d, &opts).unwrap();
    let cut = sel.indices.len();
    assert_eq!(sel.indices, free.indices[..cut]);
    assert!(free.kl_trace[cut - 1] - free.kl_trace[cut] < 0.05);
    for j in 2..cut {
        assert!(free.kl_trace[j - 1] - free.kl_trace[j] >= 0.05);
    }
}

#[test]
fn host_errors_stop_the_run() {
    let d = 2;
    let (train, x) = (data(20, 30, d, 0.0), data(21, 6, d, 0.0));
    let mut host = Recorder {
        fail_after: Some(3),
        ..Recorder::default()
    };
    let got = greedy_select(
        Rows::new("train", &train, d).unwrap(),
        Rows::new("X", &x, d).unwrap(),
        Rows::new("D", &[], d).unwrap(),
        &exhaustive(1).check().unwrap(),
        &mut host,
    );
    assert_eq!(got, Err(GioError::Aborted));
    assert_eq!(host.events.len(), 3);
    assert_eq!(host.events[2].selected, 3);
}

#[test]
fn invalid_options_are_named() {
    let d = 2;
    let (train, x) = (data(22, 30, d, 0.0), data(23, 6, d, 0.0));
    let name = |r: Result<Selection, GioError>| match r {
        Err(GioError::InvalidArgument { name, .. }) => name,
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    let with = |opts: SelectParams| run(&train, &x, &[], d, &opts);
    assert_eq!(
        name(with(SelectParams {
            stop_criterion: StopCriterion::MaxResets,
            ..greedy()
        })),
        "stop_criterion"
    );
    assert_eq!(name(with(SelectParams { k: 6, ..greedy() })), "k");
    assert_eq!(
        name(with(SelectParams {
            min_kl: f64::NAN,
            ..greedy()
        })),
        "min_kl"
    );
    assert_eq!(
        name(with(SelectParams {
            greedy_max_bytes: 30 * 6 * 8 - 1,
            k: 2,
            ..greedy()
        })),
        "train"
    );
    assert!(with(SelectParams {
        greedy_max_bytes: 30 * 6 * 8,
        k: 2,
        ..greedy()
    })
    .is_ok());
    let wide = data(24, 3, 3, 0.0);
    let got = greedy_select(
        Rows::new("train", &train, d).unwrap(),
        Rows::new("X", &x, d).unwrap(),
        Rows::new("D", &wide, 3).unwrap(),
        &greedy().check().unwrap(),
        &mut Recorder::default(),
    );
    assert_eq!(name(got), "D");
}
