//! The gradient loop: determinism across thread counts, both semantics' stop rules, errors.

use gio_rs::selection::{
    gradient_select, LoopHost, SelectParams, Selection, Semantics, StopCriterion, StopReason, VInit,
};
use gio_rs::{GioError, Rows};

/// Deterministic draws (SplitMix64) standing in for Python's `random`.
struct TestHost(u64);
impl TestHost {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
impl LoopHost for TestHost {
    fn random(&mut self) -> Result<f64, GioError> {
        Ok((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn pick(&mut self, n: usize) -> Result<usize, GioError> {
        Ok((self.next_u64() % n as u64) as usize)
    }
}

fn data(seed: u64, n: usize, d: usize, shift: f64) -> Vec<f64> {
    let mut h = TestHost(seed);
    (0..n * d)
        .map(|_| h.random().unwrap() * 2.0 - 1.0 + shift)
        .collect()
}

struct Problem {
    train: Vec<f64>,
    x: Vec<f64>,
    w0: Vec<f64>,
    d: usize,
}

impl Problem {
    fn new(m: usize, n: usize, d: usize) -> Self {
        Problem {
            train: data(1, m, d, 0.2),
            x: data(2, n, d, 0.5),
            w0: data(3, 4, d, -0.5),
            d,
        }
    }
    fn run(&self, opts: &SelectParams) -> Result<Selection, GioError> {
        gradient_select(
            Rows::new("train", &self.train, self.d).unwrap(),
            Rows::new("X", &self.x, self.d).unwrap(),
            Rows::new("D", &self.w0, self.d).unwrap(),
            &opts.clone().check()?,
            &mut TestHost(7),
        )
    }
}

fn fixed(stop: StopCriterion) -> SelectParams {
    SelectParams {
        stop_criterion: stop,
        semantics: Semantics::Fixed,
        ..SelectParams::default()
    }
}

#[test]
fn same_result_for_any_thread_count() {
    // Large enough that the gradient, the KL update and the snap all run in parallel chunks.
    let p = Problem::new(3000, 1500, 32);
    let opts = SelectParams {
        max_iter: 15,
        stop_criterion: StopCriterion::DataSize,
        v_init: VInit::Jump,
        random_restart_prob: 0.3,
        ..SelectParams::default()
    };
    let runs: Vec<Selection> = [1, 2, 5]
        .iter()
        .map(|&t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| p.run(&opts).unwrap())
        })
        .collect();
    assert_eq!(runs[0].indices.len(), 16);
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[test]
fn reference_max_iter_accepts_one_more_row_and_discards_a_candidate() {
    let p = Problem::new(200, 60, 4);
    let opts = SelectParams {
        max_iter: 5,
        stop_criterion: StopCriterion::Never,
        ..SelectParams::default()
    };
    let s = p.run(&opts).unwrap();
    assert_eq!(s.indices.len(), 6);
    assert_eq!(s.candidate_kl.len(), 7);
    assert_eq!(s.stop_reason, StopReason::MaxIter);
    assert_eq!(
        s.used.iter().filter(|&&u| u).count(),
        7,
        "the discarded candidate left the pool too"
    );
}

#[test]
fn reference_exhausted_pool_is_an_error_and_fixed_stops_cleanly() {
    let p = Problem::new(5, 30, 3);
    let never = SelectParams {
        stop_criterion: StopCriterion::Never,
        max_iter: 50,
        ..SelectParams::default()
    };
    assert_eq!(p.run(&never).unwrap_err(), GioError::PoolExhausted);
    let opts = SelectParams {
        max_iter: 50,
        ..fixed(StopCriterion::MaxResets)
    };
    let s = p.run(&SelectParams {
        max_resets: 0,
        ..opts.clone()
    });
    // With no resets allowed the run ends on an increase or on the empty pool, never with an error.
    let s = s.unwrap();
    assert!(matches!(
        s.stop_reason,
        StopReason::PoolExhausted | StopReason::Criterion(StopCriterion::MaxResets)
    ));
    let data = SelectParams {
        max_iter: 50,
        max_data_size: 10.0,
        ..fixed(StopCriterion::DataSize)
    };
    let s = p.run(&data).unwrap();
    assert_eq!(s.stop_reason, StopReason::PoolExhausted);
    assert_eq!(s.indices.len(), 5);
}

#[test]
fn fixed_min_kl_keeps_the_row_that_reached_the_target() {
    let p = Problem::new(300, 80, 4);
    let probe = p
        .run(&SelectParams {
            max_iter: 10,
            stop_criterion: StopCriterion::Never,
            ..SelectParams::default()
        })
        .unwrap();
    // A target the third accepted row reaches first.
    let target = probe.kl_trace[..3]
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        + 1e-12;
    let first_below = probe.kl_trace.iter().position(|&kl| kl < target).unwrap();
    let reference = p
        .run(&SelectParams {
            min_kl: target,
            stop_criterion: StopCriterion::MinKl,
            ..SelectParams::default()
        })
        .unwrap();
    let fixed_run = p
        .run(&SelectParams {
            min_kl: target,
            ..fixed(StopCriterion::MinKl)
        })
        .unwrap();
    assert_eq!(reference.indices, probe.indices[..first_below]);
    assert_eq!(fixed_run.indices, probe.indices[..=first_below]);
    assert_eq!(
        fixed_run.stop_reason,
        StopReason::Criterion(StopCriterion::MinKl)
    );
}

#[test]
fn fixed_sequential_increase_tolerance_stops_after_the_allowed_increases() {
    let p = Problem::new(400, 60, 3);
    let reference = p
        .run(&SelectParams {
            max_iter: 60,
            stop_criterion: StopCriterion::SequentialIncreaseTolerance,
            ..SelectParams::default()
        })
        .unwrap();
    assert_eq!(
        reference.stop_reason,
        StopReason::MaxIter,
        "the reference never stops on this criterion"
    );
    let mut stopped = 0;
    for tolerance in [0usize, 1, 2] {
        let s = p
            .run(&SelectParams {
                max_iter: 60,
                max_sequential_increases: tolerance,
                ..fixed(StopCriterion::SequentialIncreaseTolerance)
            })
            .unwrap();
        if s.stop_reason == StopReason::MaxIter {
            continue;
        }
        stopped += 1;
        // The last `tolerance` accepted rows increased the KL and the rejected candidate did too.
        let mut trace = vec![s.kl_start];
        trace.extend_from_slice(&s.kl_trace);
        let rejected = *s.candidate_kl.last().unwrap();
        assert!(rejected > *trace.last().unwrap());
        let tail = &trace[trace.len() - 1 - tolerance..];
        assert!(
            tail.windows(2).all(|w| w[1] > w[0]),
            "tolerance {tolerance}: {tail:?}"
        );
    }
    assert!(
        stopped > 0,
        "no tolerance stopped: the data do not exercise the criterion"
    );
}

#[test]
fn fixed_max_resets_resets_then_stops() {
    let p = Problem::new(150, 50, 3);
    let s = p
        .run(&SelectParams {
            max_iter: 200,
            max_resets: 2,
            ..fixed(StopCriterion::MaxResets)
        })
        .unwrap();
    assert_eq!(s.num_resets, 2);
    assert_eq!(
        s.stop_reason,
        StopReason::Criterion(StopCriterion::MaxResets)
    );
    let reference = p
        .run(&SelectParams {
            max_iter: 40,
            max_resets: 2,
            resets_allowed: true,
            stop_criterion: StopCriterion::MaxResets,
            ..SelectParams::default()
        })
        .unwrap();
    assert_eq!(
        reference.stop_reason,
        StopReason::MaxIter,
        "the reference's counter never reaches the limit"
    );
}

#[test]
fn invalid_options_are_named() {
    let p = Problem::new(50, 20, 2);
    let err = p
        .run(&SelectParams {
            random_restart_prob: 1.5,
            ..SelectParams::default()
        })
        .unwrap_err();
    assert!(err.to_string().starts_with("random_restart_prob"), "{err}");
    let err = p
        .run(&SelectParams {
            k: 20,
            ..SelectParams::default()
        })
        .unwrap_err();
    assert!(err.to_string().starts_with("k:"), "{err}");
    let err = p.run(&fixed(StopCriterion::Never)).unwrap_err();
    assert!(err.to_string().starts_with("stop_criterion"), "{err}");
}
