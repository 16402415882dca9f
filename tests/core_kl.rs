//! The estimator against a naive transcription of docs/reference.md, the incremental state against a
//! full recomputation, and the closed-form gradient against finite differences.

use gio_rs::kl::{kl_divergence, kl_gradient, log_root_sum, Candidate, KlParams, KlState};
use gio_rs::{GioError, Rows};

/// A small deterministic generator (SplitMix64) for test data.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn matrix(&mut self, n: usize, d: usize, shift: f64) -> Vec<f64> {
        (0..n * d)
            .map(|_| self.next() * 2.0 - 1.0 + shift)
            .collect()
    }
}

fn clip(s: f64) -> f64 {
    s.clamp(1e-10, 1e20)
}

fn naive_kl(x: &[f64], y: &[f64], d: usize, k: usize, discard: bool) -> f64 {
    let (n, m) = (x.len() / d, y.len() / d);
    let dropped = usize::from(discard);
    let dist =
        |a: &[f64], b: &[f64]| clip(a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>());
    let mut cross = 0.0;
    let mut xx = 0.0;
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let mut row: Vec<f64> = (0..m).map(|j| dist(xi, &y[j * d..(j + 1) * d])).collect();
        row.sort_by(f64::total_cmp);
        cross += row[dropped..]
            .iter()
            .map(|s| (s.sqrt() + 1e-8).ln())
            .sum::<f64>();
        let mut own: Vec<f64> = (0..n).map(|j| dist(xi, &x[j * d..(j + 1) * d])).collect();
        own.sort_by(f64::total_cmp);
        xx += (own[k].sqrt() + 1e-8).ln();
    }
    let pairs = (n * (m - dropped)) as f64;
    let last: f64 = (1..=m)
        .map(|j| ((k * m) as f64 / (j * (n - 1)) as f64).ln())
        .sum::<f64>()
        / m as f64;
    d as f64 * cross / pairs - d as f64 * xx / n as f64 + last
}

#[test]
fn kl_matches_naive_formula() {
    let mut g = Gen(1);
    for &(n, m, d, k) in &[
        (10, 7, 1, 1),
        (40, 30, 3, 5),
        (25, 60, 17, 24),
        (64, 9, 40, 3),
    ] {
        let x = g.matrix(n, d, 0.0);
        let y = g.matrix(m, d, 0.3);
        for discard in [false, true] {
            let got = kl_divergence(
                Rows::new("x", &x, d).unwrap(),
                Rows::new("y", &y, d).unwrap(),
                KlParams::new(k, discard),
            )
            .unwrap();
            let want = naive_kl(&x, &y, d, k, discard);
            assert!(
                (got - want).abs() <= 1e-10 * want.abs().max(1.0),
                "n={n} m={m} d={d}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn float32_input_matches_float64_of_the_same_values() {
    let mut g = Gen(2);
    let (n, m, d) = (30, 20, 9);
    let x32: Vec<f32> = g.matrix(n, d, 0.0).iter().map(|&v| v as f32).collect();
    let y32: Vec<f32> = g.matrix(m, d, 0.1).iter().map(|&v| v as f32).collect();
    let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let y64: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
    let p = KlParams::new(4, false);
    let a = kl_divergence(
        Rows::new("x", &x32, d).unwrap(),
        Rows::new("y", &y32, d).unwrap(),
        p,
    )
    .unwrap();
    let b = kl_divergence(
        Rows::new("x", &x64, d).unwrap(),
        Rows::new("y", &y64, d).unwrap(),
        p,
    )
    .unwrap();
    assert_eq!(a, b, "f32 data are converted exactly and computed in f64");
}

#[test]
fn incremental_state_equals_full_recomputation() {
    let mut g = Gen(3);
    let (n, m0, d) = (50, 4, 6);
    let x = g.matrix(n, d, 0.0);
    let w0 = g.matrix(m0, d, 0.2);
    let pool = g.matrix(30, d, -0.1);
    for discard in [false, true] {
        let params = KlParams::new(5, discard);
        let xr = Rows::new("x", &x, d).unwrap();
        let mut state = KlState::new(xr, Rows::new("w", &w0, d).unwrap(), params).unwrap();
        let mut all = w0.clone();
        let mut cand = Candidate::default();
        for j in 0..30 {
            let row = &pool[j * d..(j + 1) * d];
            state.evaluate(row, &mut cand);
            let mut with = all.clone();
            with.extend_from_slice(row);
            let full = KlState::new(xr, Rows::new("w", &with, d).unwrap(), params)
                .unwrap()
                .value();
            assert!(
                (cand.kl - full).abs() <= 1e-12 * full.abs().max(1.0),
                "evaluate, step {j}"
            );
            if j % 3 != 2 {
                // Accept two of every three candidates; rejected ones must leave no trace.
                state.accept(&cand);
                all = with;
                assert!(
                    (state.value() - full).abs() <= 1e-12 * full.abs().max(1.0),
                    "accept, step {j}"
                );
            }
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let mut g = Gen(4);
    let (n, m, d) = (40, 12, 5);
    let x = g.matrix(n, d, 0.0);
    let w = g.matrix(m, d, 0.5);
    for discard in [false, true] {
        let xr = Rows::new("x", &x, d).unwrap();
        let wr = Rows::new("w", &w, d).unwrap();
        let v: Vec<f64> = (0..d).map(|j| 0.05 * j as f64 + 0.1).collect();
        let grad = kl_gradient(xr, wr, &v, discard).unwrap();
        let kl_at = |v: &[f64]| {
            let mut with = w.clone();
            with.extend_from_slice(v);
            kl_divergence(
                xr,
                Rows::new("w", &with, d).unwrap(),
                KlParams::new(3, discard),
            )
            .unwrap()
        };
        for j in 0..d {
            let h = 1e-6;
            let (mut up, mut down) = (v.clone(), v.clone());
            up[j] += h;
            down[j] -= h;
            let numeric = (kl_at(&up) - kl_at(&down)) / (2.0 * h);
            assert!(
                (grad[j] - numeric).abs() <= 1e-5 * numeric.abs().max(1.0),
                "discard={discard} j={j}: {} vs {numeric}",
                grad[j]
            );
        }
    }
}

#[test]
fn log_root_sum_is_a_sum_of_logarithms() {
    // Over several 256-term renormalisations, magnitudes from 1e-300 to 1e300.
    let mut g = Gen(9);
    let sq: Vec<f64> = (0..1000)
        .map(|i| 10f64.powf(600.0 * g.next() - 300.0) * (1.0 + (i % 7) as f64))
        .collect();
    let want: f64 = sq.iter().map(|&s| (s.sqrt() + 1e-10).ln()).sum();
    let got = log_root_sum(&sq, 1e-10);
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    // Terms that have no mantissa and exponent are summed as logarithms: -inf, inf, NaN.
    let with = |bad: f64| log_root_sum(&[1.0, bad, 4.0], 0.0);
    assert_eq!(with(0.0), f64::NEG_INFINITY);
    assert_eq!(with(f64::INFINITY), f64::INFINITY);
    assert!(with(f64::NAN).is_nan());
    // A subnormal term (a root of 0 plus a subnormal ε).
    let eps = 1e-320;
    let want = (1f64 + eps).ln() + eps.ln();
    let got = log_root_sum(&[1.0, 0.0], eps);
    assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
}

/// The argument a failed call names (the Python error starts with it).
fn refused(result: Result<f64, GioError>) -> &'static str {
    match result {
        Err(GioError::InvalidArgument { name, .. }) => name,
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

#[test]
fn bad_k_and_shapes_are_errors_not_panics() {
    let x = [0.0f64, 1.0, 2.0];
    let y = [0.5f64];
    let xr = Rows::new("x", &x, 1).unwrap();
    let yr = Rows::new("y", &y, 1).unwrap();
    assert_eq!(refused(kl_divergence(xr, yr, KlParams::new(3, false))), "k");
    assert_eq!(refused(kl_divergence(xr, yr, KlParams::new(0, false))), "k");
    assert_eq!(
        refused(kl_divergence(xr, yr, KlParams::new(1, true))),
        "y",
        "discard needs two y rows (named as the caller named them)"
    );
    // The smallest target (2 rows, k = 1) is accepted; one row is refused by naming X.
    let two = Rows::new("x", &x[..2], 1).unwrap();
    assert!(kl_divergence(two, yr, KlParams::new(1, false))
        .unwrap()
        .is_finite());
    let one = Rows::new("x", &x[..1], 1).unwrap();
    assert_eq!(
        refused(kl_divergence(one, yr, KlParams::new(1, false))),
        "X"
    );
    assert!(Rows::new("x", &x, 2).is_err());
    assert!(Rows::new_finite("x", &[0.0f64, f64::NAN], 1).is_err());
}
