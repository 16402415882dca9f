//! Robustness properties of the core's public kernels on hostile input (issue 8, Rust side):
//! arbitrary shapes (0 and 1 rows, k at and past its limits) and arbitrary float bit patterns
//! (raw bytes, NaN, ±inf, subnormals, ±1e30, 1e-30, f64::MAX, duplicate rows) fed to rows
//! validation, the KL estimator and its incremental state, the gradient and descent, the snap
//! scan, K-Means (fit and assignment) and the selection loop. Every target checks: no panic;
//! invalid input is an `InvalidArgument` naming the argument; valid finite input gives finite
//! results that agree with a brute-force scalar computation; a second run gives identical bits.
//!
//! Each target has a default case count (about 22,000 cases in all, a few seconds in the test
//! profile); `PROPTEST_CASES=N` runs N cases per target instead (N/128, at least 1, for the
//! large-shape targets), `PROPTEST_RNG_SEED=S` explores another seed (by default every target
//! has a fixed seed, so CI runs are reproducible). Each target prints its case counts (visible
//! with `--nocapture`).

use gio_rs::descent::{auto_scale_factor, descend, descend_many, DescentWork};
use gio_rs::distance::{
    kth_neighbour_sq, kth_neighbour_sq_symmetric, nearest_unused, row_norms, sq_dist, CLIP_HIGH,
    CLIP_LOW,
};
use gio_rs::kl::{kl_divergence, kl_gradient, Candidate, GradientWork, KlParams, KlState};
use gio_rs::kmeans::{assign, kmeans, KMeansFit, KMeansInit, KMeansParams};
use gio_rs::params::Named;
use gio_rs::selection::{
    gradient_select, LoopHost, SelectParams, Selection, Semantics, StopCriterion, StopReason, VInit,
};
use gio_rs::{Element, GioError, Precision, Rows};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestCaseResult, TestRunner};
use std::cell::Cell;
use std::fmt::Debug;

// ---------------------------------------------------------------------------------------------
// Running targets

/// `default` cases, or `PROPTEST_CASES` / `share` (at least 1) when that is set.
fn cases(default: u32, share: u32) -> u32 {
    match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(n) => (n / share).max(1),
        None => default,
    }
}

/// Runs `test` on `cases` values of `strategy`, panicking with the shrunk counterexample on
/// failure (a panic inside `test` is a failure too).
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) {
    // Config::default() reads PROPTEST_RNG_SEED (and more) from the environment.
    let mut config = Config {
        cases,
        // Counterexamples become explicit regression tests; no files are written into the tree.
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        // FNV-1a of the name: a fixed, distinct seed per target.
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        config.rng_seed = RngSeed::Fixed(seed);
    }
    let passed = Cell::new(0usize);
    BRUTE_FORCE_CHECKED.with(|c| c.set(0));
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        test(value)?;
        passed.set(passed.get() + 1);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
    eprintln!(
        "robust {name}: {} cases passed, {} of them valid finite input checked against brute force",
        passed.get(),
        BRUTE_FORCE_CHECKED.with(Cell::get)
    );
}

thread_local! {
    /// Cases of the running target (each runs on its own thread) that reached the brute-force
    /// comparison: valid, finite input.
    static BRUTE_FORCE_CHECKED: Cell<usize> = const { Cell::new(0) };
}

fn count_brute_force_check() {
    BRUTE_FORCE_CHECKED.with(|c| c.set(c.get() + 1));
}

/// Mostly `valid` values, one draw in 25 from `invalid`.
fn mostly<T: Clone + Debug + 'static>(valid: Vec<T>, invalid: Vec<T>) -> BoxedStrategy<T> {
    prop_oneof![24 => select(valid), 1 => select(invalid)].boxed()
}

/// `result` is an `InvalidArgument` naming one of `allowed`, its message led by that name.
fn expect_invalid<R: Debug>(result: &Result<R, GioError>, allowed: &[&str]) -> TestCaseResult {
    match result {
        Err(e @ GioError::InvalidArgument { name, .. }) => {
            prop_assert!(
                allowed.contains(name),
                "the error names {name}, expected one of {allowed:?}: {e}"
            );
            prop_assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}");
            Ok(())
        }
        other => Err(TestCaseError::fail(format!(
            "expected an invalid-argument error naming one of {allowed:?}, got {other:?}"
        ))),
    }
}

/// Bit-identical (NaN included): what "the same result twice" means.
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
}

// ---------------------------------------------------------------------------------------------
// Values

/// Which values a case draws.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Regime {
    /// Ordinary magnitudes, small integers (duplicates, ties), tiny and subnormal values.
    Moderate,
    /// Any finite value: the above, extremes (1e±30, 1e150, f64::MAX, ...) and raw bytes.
    Finite,
    /// Anything: NaN (both signs, signalling), ±inf and raw bytes included.
    Hostile,
}

fn regime() -> BoxedStrategy<Regime> {
    prop_oneof![
        3 => Just(Regime::Moderate),
        3 => Just(Regime::Finite),
        2 => Just(Regime::Hostile),
    ]
    .boxed()
}

/// For large shapes, where almost every hostile matrix would hold a NaN somewhere.
fn finite_regime() -> BoxedStrategy<Regime> {
    prop_oneof![3 => Just(Regime::Moderate), 1 => Just(Regime::Finite)].boxed()
}

/// A stored float type as the tests draw it.
trait Float: Element {
    fn moderate() -> BoxedStrategy<Self>;
    fn specials() -> Vec<Self>;
    /// Arbitrary bytes read as a float (any bit pattern).
    fn from_bytes() -> BoxedStrategy<Self>;
    fn is_finite_value(self) -> bool;

    fn values(regime: Regime) -> BoxedStrategy<Self> {
        let finite = prop_oneof![
            5 => Self::moderate(),
            2 => select(Self::specials()),
            2 => Self::from_bytes().prop_filter("finite", |v| v.is_finite_value()),
        ]
        .boxed();
        match regime {
            Regime::Moderate => Self::moderate(),
            Regime::Finite => finite,
            Regime::Hostile => prop_oneof![
                6 => finite,
                2 => select(Self::non_finite()),
                2 => Self::from_bytes(),
            ]
            .boxed(),
        }
    }

    fn non_finite() -> Vec<Self> {
        [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
        ]
        .into_iter()
        .map(Self::from_f64)
        .collect()
    }
}

impl Float for f64 {
    fn moderate() -> BoxedStrategy<Self> {
        prop_oneof![
            6 => -4.0f64..4.0,
            2 => (-3i8..=3).prop_map(f64::from),
            1 => select(vec![1e-30, -1e-30, 5e-324, -1e-310, 0.0, -0.0, 1e-5, 2.5]),
        ]
        .boxed()
    }
    fn specials() -> Vec<Self> {
        vec![
            1e30,
            -1e30,
            1e-30,
            f64::MIN_POSITIVE,
            5e-324,
            1e10,
            -1e10,
            1e19,
            1e150,
            -1e154,
            1e200,
            -1e300,
            f64::MAX,
            f64::MIN,
            1.0 + f64::EPSILON,
            3.4e38,
        ]
    }
    fn from_bytes() -> BoxedStrategy<Self> {
        any::<[u8; 8]>().prop_map(f64::from_le_bytes).boxed()
    }
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
}

impl Float for f32 {
    fn moderate() -> BoxedStrategy<Self> {
        prop_oneof![
            6 => -4.0f32..4.0,
            2 => (-3i8..=3).prop_map(f32::from),
            1 => select(vec![1e-30f32, -1e-30, 1e-45, -1e-40, 0.0, -0.0, 1e-5, 2.5]),
        ]
        .boxed()
    }
    fn specials() -> Vec<Self> {
        vec![
            1e30,
            -1e30,
            1e-30,
            f32::MIN_POSITIVE,
            1e-45,
            1e10,
            -1e10,
            1e19,
            -3e38,
            f32::MAX,
            f32::MIN,
            1.0 + f32::EPSILON,
        ]
    }
    fn from_bytes() -> BoxedStrategy<Self> {
        any::<[u8; 4]>().prop_map(f32::from_le_bytes).boxed()
    }
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
}

/// `rows` rows of `dim` values, about a quarter of them copies of an earlier row.
fn matrix<T: Float>(
    rows: impl Strategy<Value = usize> + 'static,
    dim: usize,
    values: BoxedStrategy<T>,
) -> BoxedStrategy<Vec<T>> {
    rows.prop_flat_map(move |n| {
        (
            vec(values.clone(), n * dim),
            vec(proptest::option::weighted(0.25, any::<Index>()), n),
        )
    })
    .prop_map(move |(mut data, copies)| {
        for (r, copy) in copies.iter().enumerate().skip(1) {
            if let Some(ix) = copy {
                let src = ix.index(r);
                data.copy_within(src * dim..(src + 1) * dim, r * dim);
            }
        }
        data
    })
    .boxed()
}

/// A vector of `dim` f64 values, or (when `copy` is set and `rows` has rows) a copy of a row.
fn vector_or_row<T: Float>(
    values: Vec<f64>,
    copy: Option<Index>,
    rows: &[T],
    dim: usize,
) -> Vec<f64> {
    match copy {
        Some(ix) if rows.len() >= dim && dim > 0 => {
            let r = ix.index(rows.len() / dim);
            rows[r * dim..(r + 1) * dim]
                .iter()
                .map(|v| v.to_f64())
                .collect()
        }
        _ => values,
    }
}

fn all_finite<T: Element>(values: &[T]) -> bool {
    values.iter().all(|v| v.to_f64().is_finite())
}

fn largest_magnitude<T: Element>(values: &[T]) -> f64 {
    values.iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max)
}

// ---------------------------------------------------------------------------------------------
// Brute-force scalar references

fn naive_sq<A: Element, B: Element>(a: &[A], b: &[B]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| {
            let t = p.to_f64() - q.to_f64();
            t * t
        })
        .sum()
}

fn clip(s: f64) -> f64 {
    s.clamp(CLIP_LOW, CLIP_HIGH)
}

/// KL(x ‖ y) transcribed from docs/reference.md with sorted distance lists, and a tolerance for comparing
/// an implementation that sums in another order (1e-9 of the magnitudes summed).
fn naive_kl<T: Element>(
    x: &[T],
    y: &[T],
    d: usize,
    k: usize,
    eps: f64,
    discard: bool,
) -> (f64, f64) {
    let (n, m) = (x.len() / d, y.len() / d);
    let dropped = usize::from(discard);
    let log = |s: f64| (clip(s).sqrt() + eps).ln();
    let (mut cross, mut cross_abs, mut xx, mut xx_abs) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let mut row: Vec<f64> = (0..m)
            .map(|j| naive_sq(xi, &y[j * d..(j + 1) * d]))
            .collect();
        row.sort_by(f64::total_cmp);
        for &s in &row[dropped..] {
            cross += log(s);
            cross_abs += log(s).abs();
        }
        let mut own: Vec<f64> = (0..n)
            .map(|j| naive_sq(xi, &x[j * d..(j + 1) * d]))
            .collect();
        own.sort_by(f64::total_cmp);
        xx += log(own[k]);
        xx_abs += log(own[k]).abs();
    }
    let pairs = (n * (m - dropped)) as f64;
    let size: f64 = (1..=m)
        .map(|j| ((k * m) as f64 / ((j * (n - 1)) as f64)).ln())
        .sum::<f64>()
        / m as f64;
    let df = d as f64;
    let value = df * cross / pairs - df * xx / n as f64 + size;
    let tol = 1e-9 * (df * cross_abs / pairs + df * xx_abs / n as f64 + size.abs()) + 1e-12;
    (value, tol)
}

/// The gradient of KL(x ‖ w ∪ {v}) from docs/reference.md, term by term, with a per-coordinate tolerance:
/// 1e-9 of the magnitudes summed plus every term whose inclusion roundoff can flip (a squared
/// distance within 1e-9 of a clip bound or, with discard, of the row's nearest w).
fn naive_gradient<T: Element>(
    x: &[T],
    w: &[T],
    v: &[f64],
    discard: bool,
    eps: f64,
) -> (Vec<f64>, Vec<f64>) {
    let d = v.len();
    let (n, m) = (x.len() / d, w.len() / d);
    let m_eff = if discard { m } else { m + 1 };
    let factor = d as f64 / (n as f64 * m_eff as f64);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    let (mut g, mut tol) = (vec![0.0; d], vec![0.0; d]);
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let s = naive_sq(v, xi);
        if !s.is_finite() {
            continue; // outside the clip range for any rounding: no term
        }
        let nearest = (0..m)
            .map(|j| clip(naive_sq(xi, &w[j * d..(j + 1) * d])))
            .fold(f64::INFINITY, f64::min);
        let included = s > CLIP_LOW && s < CLIP_HIGH && !(discard && s < nearest);
        let ambiguous = close(s, CLIP_LOW) || close(s, CLIP_HIGH) || (discard && close(s, nearest));
        if !included && !ambiguous {
            continue;
        }
        let r = s.sqrt();
        let c = 1.0 / (r * (r + eps));
        for j in 0..d {
            let xj = xi[j].to_f64();
            let term = c * (v[j] - xj);
            if included {
                g[j] += term;
            }
            if ambiguous {
                tol[j] += term.abs();
            }
            tol[j] += 1e-9 * c * (v[j].abs() + xj.abs());
        }
    }
    for (gj, tj) in g.iter_mut().zip(&mut tol) {
        *gj *= factor;
        *tj = *tj * factor + 1e-12 * gj.abs() + 1e-300;
    }
    (g, tol)
}

/// Roundoff allowance of a Gram-form nearest-center pick for row norm `xn` (the float32 kernel's
/// when the data are float32, doubled).
fn assign_margin<T: Element>(dim: usize, xn: f64, c_norm_max: f64) -> f64 {
    let unit = match T::PRECISION {
        Precision::F32 => f32::EPSILON as f64,
        Precision::F64 => f64::EPSILON,
    };
    4.0 * (dim as f64 + 8.0) * unit * (xn + c_norm_max)
}

/// Labels, exact distances and their brute-force checks for an assignment of `x` to `centers`.
fn check_assignment<T: Element>(
    x: &[T],
    centers: &[f64],
    dim: usize,
    labels: &[u32],
    dists: &[f64],
) -> TestCaseResult {
    let k = centers.len() / dim;
    let n = x.len() / dim;
    prop_assert_eq!(labels.len(), n);
    let c_norms: Vec<f64> = (0..k)
        .map(|c| naive_sq(&centers[c * dim..(c + 1) * dim], &vec![0.0f64; dim]))
        .collect();
    let c_norm_max = c_norms.iter().copied().fold(0.0, f64::max);
    for i in 0..n {
        let xi = &x[i * dim..(i + 1) * dim];
        let label = labels[i] as usize;
        prop_assert!(label < k, "row {i}: label {label} of {k} centers");
        let own = sq_dist(xi, &centers[label * dim..(label + 1) * dim]);
        prop_assert_eq!(own.to_bits(), dists[i].to_bits(), "row {}: distance", i);
        if all_finite(xi) && all_finite(centers) {
            let best = (0..k)
                .map(|c| sq_dist(xi, &centers[c * dim..(c + 1) * dim]))
                .fold(f64::INFINITY, f64::min);
            let xn = naive_sq(xi, &vec![0.0f64; dim]);
            let margin = assign_margin::<T>(dim, xn, c_norm_max);
            prop_assert!(
                own <= best + margin,
                "row {i}: its center is at {own}, the nearest at {best} (margin {margin})"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rows

#[derive(Debug, Clone)]
struct RowsCase<T> {
    data: Vec<T>,
    dim: usize,
}

fn rows_case<T: Float>() -> impl Strategy<Value = RowsCase<T>> {
    (
        regime(),
        prop_oneof![8 => 0usize..=7, 1 => Just(1usize << 40), 1 => Just(usize::MAX)],
        0usize..=24,
    )
        .prop_flat_map(|(r, dim, len)| (vec(T::values(r), len), Just(dim)))
        .prop_map(|(data, dim)| RowsCase { data, dim })
}

fn rows_validation<T: Float>(case: RowsCase<T>) -> TestCaseResult {
    let RowsCase { data, dim } = case;
    let shaped = dim != 0 && data.len() % dim == 0;
    match Rows::new("X", &data, dim) {
        Err(e) => {
            prop_assert!(!shaped);
            expect_invalid(&Err::<(), _>(e), &["X"])?;
        }
        Ok(rows) => {
            prop_assert!(shaped);
            prop_assert_eq!(rows.len(), data.len() / dim);
            prop_assert_eq!(rows.is_empty(), data.is_empty());
            prop_assert_eq!(rows.dim(), dim);
            // Views of the caller's memory, not copies.
            for i in 0..rows.len() {
                prop_assert!(std::ptr::eq(rows.row(i), &data[i * dim..(i + 1) * dim]));
            }
            prop_assert!(std::ptr::eq(rows.slice(0, rows.len()).data(), &data[..]));
            if dim <= 64 {
                if all_finite(&data) {
                    count_brute_force_check();
                }
                // Column means: the plain sums in row order, divided by max(n, 1).
                let means = rows.column_means();
                let expected: Vec<f64> = (0..dim)
                    .map(|c| {
                        let mut s = 0.0;
                        for i in 0..rows.len() {
                            s += data[i * dim + c].to_f64();
                        }
                        s / rows.len().max(1) as f64
                    })
                    .collect();
                // Equal, NaN where the brute force has NaN (payloads may differ).
                let agree = means.len() == expected.len()
                    && means
                        .iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                prop_assert!(agree, "{means:?} vs {expected:?}");
            }
        }
    }
    let finite = Rows::new_finite("X", &data, dim);
    match data.iter().position(|v| !v.to_f64().is_finite()) {
        Some(pos) if shaped => {
            let message = finite.as_ref().map(|_| ()).map_err(|e| e.to_string());
            expect_invalid(&finite, &["X"])?;
            let at = format!("(rows {}", pos / dim);
            prop_assert!(
                message.as_ref().is_err_and(|m| m.contains(&at)),
                "{message:?} (expected {at})"
            );
        }
        _ => prop_assert_eq!(finite.is_ok(), shaped),
    }
    Ok(())
}

#[test]
fn rows_validation_f64() {
    check(
        "rows_validation_f64",
        cases(2048, 1),
        rows_case::<f64>(),
        rows_validation,
    );
}

#[test]
fn rows_validation_f32() {
    check(
        "rows_validation_f32",
        cases(2048, 1),
        rows_case::<f32>(),
        rows_validation,
    );
}

// ---------------------------------------------------------------------------------------------
// The estimator

#[derive(Debug, Clone)]
struct KlCase<T> {
    x: Vec<T>,
    y: Vec<T>,
    d: usize,
    y_dim: usize,
    k: usize,
    eps: f64,
    discard: bool,
}

fn kl_case<T: Float>() -> impl Strategy<Value = KlCase<T>> {
    (
        regime(),
        1usize..=4,
        prop_oneof![6 => 2usize..=9, 1 => 0usize..=1],
        prop_oneof![6 => 2usize..=6, 1 => 0usize..=1],
    )
        .prop_flat_map(|(r, d, n, m)| {
            (
                Just(d),
                prop_oneof![8 => Just(d), 1 => 1usize..=5],
                prop_oneof![
                    6 => 1usize..n.max(2),
                    2 => 0usize..=n + 1,
                    1 => Just(usize::MAX),
                ],
                mostly(
                    vec![1e-8, 1e-8, 0.0, 1e-3],
                    vec![-1e-8, f64::NAN, f64::INFINITY],
                ),
                any::<bool>(),
                matrix(Just(n), d, T::values(r)),
                Just(m),
                Just(r),
            )
        })
        .prop_flat_map(|(d, y_dim, k, eps, discard, x, m, r)| {
            (
                Just((d, y_dim, k, eps, discard, x)),
                matrix(Just(m), y_dim, T::values(r)),
            )
        })
        .prop_map(|((d, y_dim, k, eps, discard, x), y)| KlCase {
            x,
            y,
            d,
            y_dim,
            k,
            eps,
            discard,
        })
}

fn kl_divergence_robust<T: Float>(case: KlCase<T>) -> TestCaseResult {
    let KlCase {
        x,
        y,
        d,
        y_dim,
        k,
        eps,
        discard,
    } = &case;
    let (d, y_dim, k, eps, discard) = (*d, *y_dim, *k, *eps, *discard);
    let (n, m) = (x.len() / d, y.len() / y_dim);
    // Validation at the boundary names the array.
    if !all_finite(x) {
        expect_invalid(&Rows::new_finite("X", x, d), &["X"])?;
    }
    if !all_finite(y) {
        expect_invalid(&Rows::new_finite("y", y, y_dim), &["y"])?;
    }
    let params = KlParams {
        k,
        eps,
        discard_nearest_for_xy: discard,
    };
    let run = || {
        kl_divergence(
            Rows::new("X", x, d).unwrap(),
            Rows::new("y", y, y_dim).unwrap(),
            params,
        )
    };
    let (first, second) = (run(), run());
    prop_assert_eq!(
        first.as_ref().map(|v| v.to_bits()),
        second.as_ref().map(|v| v.to_bits())
    );
    let mut invalid = Vec::new();
    if m == 0 || (discard && m < 2) || y_dim != d {
        invalid.push("y");
    }
    if n < 2 {
        invalid.push("X");
    }
    if k == 0 || k >= n {
        invalid.push("k");
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        invalid.push("eps");
    }
    if !invalid.is_empty() {
        return expect_invalid(&first, &invalid);
    }
    let value = first.map_err(|e| TestCaseError::fail(format!("valid input refused: {e}")))?;
    if all_finite(x) && all_finite(y) {
        count_brute_force_check();
        prop_assert!(value.is_finite(), "KL = {value}");
        let (expected, tol) = naive_kl(x, y, d, k, eps, discard);
        prop_assert!(
            (value - expected).abs() <= tol,
            "KL = {value}, brute force {expected} (tolerance {tol})"
        );
    }
    Ok(())
}

#[test]
fn kl_divergence_f64() {
    check(
        "kl_divergence_f64",
        cases(1024, 1),
        kl_case::<f64>(),
        kl_divergence_robust,
    );
}

#[test]
fn kl_divergence_f32() {
    check(
        "kl_divergence_f32",
        cases(1024, 1),
        kl_case::<f32>(),
        kl_divergence_robust,
    );
}

#[derive(Debug, Clone)]
struct KthCase<T> {
    x: Vec<T>,
    d: usize,
    k: usize,
}

fn kth_case<T: Float>(
    regimes: BoxedStrategy<Regime>,
    rows: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = KthCase<T>> {
    (regimes, 1usize..=9, rows)
        .prop_flat_map(|(r, d, n)| (matrix(Just(n), d, T::values(r)), Just(d), 0..n))
        .prop_map(|(x, d, k)| KthCase { x, d, k })
}

fn kth_neighbour_robust<T: Float>(case: KthCase<T>) -> TestCaseResult {
    let KthCase { x, d, k } = case;
    let rows = Rows::new("X", &x, d).unwrap();
    let got = kth_neighbour_sq(rows, k);
    prop_assert!(same_bits(&got, &kth_neighbour_sq(rows, k)));
    prop_assert_eq!(got.len(), rows.len());
    if all_finite(&x) {
        count_brute_force_check();
        // The symmetric search (half the tiles) gives the same bits.
        prop_assert!(
            same_bits(&got, &kth_neighbour_sq_symmetric(rows, k)),
            "symmetric"
        );
        // Exact: the (k+1)-th smallest of the same exact distances, clipped.
        for (i, &value) in got.iter().enumerate() {
            let mut all: Vec<f64> = (0..rows.len())
                .map(|j| sq_dist(rows.row(i), rows.row(j)))
                .collect();
            all.sort_by(f64::total_cmp);
            prop_assert_eq!(value.to_bits(), clip(all[k]).to_bits(), "row {}", i);
            prop_assert!((CLIP_LOW..=CLIP_HIGH).contains(&value));
        }
    }
    Ok(())
}

#[test]
fn kth_neighbour_f64() {
    check(
        "kth_neighbour_f64",
        cases(1024, 1),
        kth_case::<f64>(regime(), 1..=40),
        kth_neighbour_robust,
    );
}

#[test]
fn kth_neighbour_f32() {
    check(
        "kth_neighbour_f32",
        cases(1024, 1),
        kth_case::<f32>(regime(), 1..=40),
        kth_neighbour_robust,
    );
}

#[derive(Debug, Clone)]
struct StateCase<T> {
    x: Vec<T>,
    w0: Vec<T>,
    candidates: Vec<T>,
    d: usize,
    k: usize,
    discard: bool,
}

fn state_case<T: Float>() -> impl Strategy<Value = StateCase<T>> {
    (
        prop_oneof![Just(Regime::Moderate), Just(Regime::Finite)],
        1usize..=3,
        2usize..=8,
        0usize..=3,
        1usize..=4,
    )
        .prop_flat_map(|(r, d, n, m, c)| {
            (
                matrix(Just(n), d, T::values(r)),
                matrix(Just(m), d, T::values(r)),
                matrix(Just(c), d, T::values(r)),
                Just(d),
                1..n,
                any::<bool>(),
            )
        })
        .prop_map(|(x, w0, candidates, d, k, discard)| StateCase {
            x,
            w0,
            candidates,
            d,
            k,
            discard,
        })
}

/// The incremental state (add_rows, evaluate, accept, nearest_sq) against brute force.
fn kl_state_robust<T: Float>(case: StateCase<T>) -> TestCaseResult {
    let StateCase {
        x,
        w0,
        candidates,
        d,
        k,
        discard,
    } = case;
    let params = KlParams::new(k, discard);
    let xr = Rows::new("X", &x, d).unwrap();
    let mut state = KlState::new(xr, Rows::new("W", &w0, d).unwrap(), params).unwrap();
    let mut selected = w0.clone();
    let defined = |m: usize| m > usize::from(discard);
    let compare = |value: f64, w: &[T]| -> TestCaseResult {
        let m = w.len() / d;
        if !defined(m) {
            prop_assert!(value.is_nan(), "KL with {m} rows = {value}, expected NaN");
            return Ok(());
        }
        let (expected, tol) = naive_kl(&x, w, d, k, params.eps, discard);
        prop_assert!(
            (value - expected).abs() <= tol,
            "KL with {m} rows = {value}, brute force {expected}"
        );
        Ok(())
    };
    count_brute_force_check();
    compare(state.value(), &selected)?;
    let mut cand = Candidate::default();
    for row in candidates.chunks_exact(d) {
        state.evaluate(row, &mut cand);
        let mut with_row = selected.clone();
        with_row.extend_from_slice(row);
        compare(cand.kl, &with_row)?;
        state.accept(&cand);
        selected = with_row;
        compare(state.value(), &selected)?;
        prop_assert_eq!(state.selection_size(), selected.len() / d);
    }
    // All at once through add_rows.
    let all = KlState::new(xr, Rows::new("W", &selected, d).unwrap(), params).unwrap();
    compare(all.value(), &selected)?;
    if discard {
        for (i, &got) in state.nearest_sq().iter().enumerate() {
            let xi = &x[i * d..(i + 1) * d];
            let expected = selected
                .chunks_exact(d)
                .map(|w| clip(naive_sq(xi, w)))
                .fold(f64::INFINITY, f64::min);
            prop_assert!(
                (got - expected).abs() <= 1e-12 * expected,
                "nearest of row {i}: {got} vs {expected}"
            );
        }
    }
    Ok(())
}

#[test]
fn kl_state_f64() {
    check(
        "kl_state_f64",
        cases(768, 1),
        state_case::<f64>(),
        kl_state_robust,
    );
}

#[test]
fn kl_state_f32() {
    check(
        "kl_state_f32",
        cases(768, 1),
        state_case::<f32>(),
        kl_state_robust,
    );
}

// ---------------------------------------------------------------------------------------------
// Gradient and descent

#[derive(Debug, Clone)]
struct GradientCase<T> {
    x: Vec<T>,
    w: Vec<T>,
    v: Vec<f64>,
    d: usize,
    w_dim: usize,
    discard: bool,
}

fn gradient_case<T: Float>(
    regimes: BoxedStrategy<Regime>,
    rows: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = GradientCase<T>> {
    (regimes, 1usize..=4, rows, 0usize..=4)
        .prop_flat_map(|(r, d, n, m)| {
            let w_dim = prop_oneof![8 => Just(d), 1 => 1usize..=5];
            let v_len = prop_oneof![8 => Just(d), 1 => 0usize..=5];
            (
                (Just(d), Just(m), Just(r), w_dim, v_len),
                matrix(Just(n), d, T::values(r)),
                any::<bool>(),
            )
        })
        .prop_flat_map(|((d, m, r, w_dim, v_len), x, discard)| {
            (
                Just((d, w_dim, discard)),
                Just(x),
                matrix(Just(m), w_dim, T::values(r)),
                vec(f64::values(r), v_len),
                proptest::option::weighted(0.3, any::<Index>()),
            )
        })
        .prop_map(|((d, w_dim, discard), x, w, v, copy)| {
            // A copy of a target or selection row puts v at distance 0 or at a tie.
            let v = if v.len() == d && copy.is_some_and(|c| c.index(2) == 0) {
                vector_or_row(v, copy, &x, d)
            } else if v.len() == d && w_dim == d {
                vector_or_row(v, copy, &w, d)
            } else {
                v
            };
            GradientCase {
                x,
                w,
                v,
                d,
                w_dim,
                discard,
            }
        })
}

fn kl_gradient_robust<T: Float>(case: GradientCase<T>) -> TestCaseResult {
    let GradientCase {
        x,
        w,
        v,
        d,
        w_dim,
        discard,
    } = &case;
    let (d, w_dim, discard) = (*d, *w_dim, *discard);
    let run = || {
        kl_gradient(
            Rows::new("X", x, d).unwrap(),
            Rows::new("W", w, w_dim).unwrap(),
            v,
            discard,
        )
    };
    let (first, second) = (run(), run());
    match (&first, &second) {
        (Ok(a), Ok(b)) => prop_assert!(same_bits(a, b)),
        _ => prop_assert_eq!(&first, &second),
    }
    let mut invalid = Vec::new();
    if v.len() != d {
        invalid.push("v");
    }
    if w_dim != d || (w.is_empty() && discard) {
        invalid.push("W");
    }
    if x.is_empty() {
        invalid.push("X");
    }
    if !invalid.is_empty() {
        return expect_invalid(&first, &invalid);
    }
    let g = first.map_err(|e| TestCaseError::fail(format!("valid input refused: {e}")))?;
    prop_assert_eq!(g.len(), d);
    if all_finite(x) && all_finite(w) && all_finite(v) {
        count_brute_force_check();
        prop_assert!(all_finite(&g), "gradient {g:?}");
        let (expected, tol) = naive_gradient(x, w, v, discard, KlParams::new(1, false).eps);
        for j in 0..d {
            prop_assert!(
                (g[j] - expected[j]).abs() <= tol[j],
                "coordinate {j}: {} vs brute force {} (tolerance {})",
                g[j],
                expected[j],
                tol[j]
            );
        }
    }
    Ok(())
}

#[test]
fn kl_gradient_f64() {
    check(
        "kl_gradient_f64",
        cases(1024, 1),
        gradient_case::<f64>(regime(), 0..=10),
        kl_gradient_robust,
    );
}

#[test]
fn kl_gradient_f32() {
    check(
        "kl_gradient_f32",
        cases(1024, 1),
        gradient_case::<f32>(regime(), 0..=10),
        kl_gradient_robust,
    );
}

#[derive(Debug, Clone)]
struct DescentCase<T> {
    x: Vec<T>,
    w: Vec<T>,
    v: Vec<f64>,
    d: usize,
    discard: bool,
    step: (f64, f64),
    steps: usize,
    extra_sizes: usize,
    abort_after: Option<usize>,
}

fn descent_case<T: Float>() -> impl Strategy<Value = DescentCase<T>> {
    (
        prop_oneof![Just(Regime::Moderate), Just(Regime::Finite)],
        1usize..=4,
        1usize..=8,
        0usize..=3,
        any::<bool>(),
    )
        .prop_flat_map(|(r, d, n, m, discard)| {
            // With discard the selection needs a row.
            let m = if discard { m.max(1) } else { m };
            (
                matrix(Just(n), d, T::values(r)),
                matrix(Just(m), d, T::values(r)),
                vec(f64::values(r), d),
                Just((d, discard)),
                (select(vec![0.0, 1e-3, 0.01, 0.5, 1.0]), 0.0f64..=1.0),
                0usize..=6,
                0usize..=3,
                proptest::option::weighted(0.2, 0usize..=6),
            )
        })
        .prop_map(
            |(x, w, v, (d, discard), step, steps, extra_sizes, abort_after)| DescentCase {
                x,
                w,
                v,
                d,
                discard,
                step,
                steps,
                extra_sizes,
                abort_after,
            },
        )
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn descent_robust<T: Float>(case: DescentCase<T>) -> TestCaseResult {
    let DescentCase {
        x,
        w,
        v,
        d,
        discard,
        step: (lr, scale),
        steps,
        extra_sizes,
        abort_after,
    } = case;
    let xr = Rows::new("X", &x, d).unwrap();
    let wr = Rows::new("W", &w, d).unwrap();
    let state = KlState::without_target_term(xr, wr, KlParams::new(1, discard)).unwrap();
    let mut work = DescentWork::default();

    // The automatic scale factor is ‖v‖ / ‖∇‖ (inf or NaN where the gradient vanishes).
    let mut g = vec![0.0; d];
    state.gradient(&v, &mut GradientWork::default(), &mut g);
    let auto = auto_scale_factor(&state, &v, &mut work);
    prop_assert_eq!(auto.to_bits(), (norm(&v) / norm(&g)).to_bits());

    descend_is_manual_steps(&state, &v, (lr, scale), steps, &mut work)?;
    many_sizes_are_one_at_a_time(
        &state,
        &v,
        (lr, scale),
        steps,
        discard,
        extra_sizes,
        &mut work,
    )?;
    if let Some(after) = abort_after {
        poll_error_stops_descent(&state, &v, (lr, scale), steps, after, &mut work)?;
    }
    Ok(())
}

/// descend = steps of v ← v − lr·scale·∇, bit for bit, and finite for lr·scale ≤ 1.
fn descend_is_manual_steps<T: Float>(
    state: &KlState<'_, T>,
    v: &[f64],
    (lr, scale): (f64, f64),
    steps: usize,
    work: &mut DescentWork,
) -> TestCaseResult {
    let mut never = || Ok(());
    let mut g = vec![0.0; v.len()];
    let mut descended = v.to_vec();
    descend(state, &mut descended, scale, lr, steps, work, &mut never).unwrap();
    let mut manual = v.to_vec();
    for _ in 0..steps {
        state.gradient(&manual, &mut GradientWork::default(), &mut g);
        for (mj, gj) in manual.iter_mut().zip(&g) {
            *mj -= (lr * scale) * gj;
        }
    }
    count_brute_force_check();
    prop_assert!(
        same_bits(&descended, &manual),
        "{descended:?} vs {manual:?}"
    );
    prop_assert!(all_finite(&descended), "{descended:?}");
    Ok(())
}

/// Several selection sizes at once equal one at a time (discard: only the current size).
fn many_sizes_are_one_at_a_time<T: Float>(
    state: &KlState<'_, T>,
    v: &[f64],
    (lr, scale): (f64, f64),
    steps: usize,
    discard: bool,
    extra_sizes: usize,
    work: &mut DescentWork,
) -> TestCaseResult {
    let (d, mut never) = (v.len(), || Ok(()));
    let m = state.selection_size();
    let sizes: Vec<usize> = if discard {
        vec![m; extra_sizes + 1]
    } else {
        (m..=m + extra_sizes).collect()
    };
    let mut batch: Vec<f64> = sizes.iter().flat_map(|_| v.to_vec()).collect();
    descend_many(
        state, &mut batch, &sizes, scale, lr, steps, work, &mut never,
    )
    .unwrap();
    for (b, &size) in sizes.iter().enumerate() {
        let mut alone = v.to_vec();
        descend_many(
            state,
            &mut alone,
            &[size],
            scale,
            lr,
            steps,
            work,
            &mut never,
        )
        .unwrap();
        prop_assert!(same_bits(&batch[b * d..(b + 1) * d], &alone), "size {size}");
    }
    Ok(())
}

/// A poll error stops the descent with that error once the poll is reached.
fn poll_error_stops_descent<T: Float>(
    state: &KlState<'_, T>,
    v: &[f64],
    (lr, scale): (f64, f64),
    steps: usize,
    after: usize,
    work: &mut DescentWork,
) -> TestCaseResult {
    let mut polls = 0;
    let mut poll = || {
        polls += 1;
        if polls > after {
            Err(GioError::Aborted)
        } else {
            Ok(())
        }
    };
    let mut v2 = v.to_vec();
    let result = descend(state, &mut v2, scale, lr, steps, work, &mut poll);
    if steps > after {
        prop_assert_eq!(result, Err(GioError::Aborted));
    } else {
        prop_assert_eq!(result, Ok(()));
    }
    Ok(())
}

#[test]
fn descent_f64() {
    check(
        "descent_f64",
        cases(768, 1),
        descent_case::<f64>(),
        descent_robust,
    );
}

#[test]
fn descent_f32() {
    check(
        "descent_f32",
        cases(768, 1),
        descent_case::<f32>(),
        descent_robust,
    );
}

// ---------------------------------------------------------------------------------------------
// The snap

#[derive(Debug, Clone)]
struct SnapCase<T> {
    pool: Vec<T>,
    v: Vec<f64>,
    used: Vec<bool>,
    d: usize,
}

fn snap_case<T: Float>(
    regimes: BoxedStrategy<Regime>,
    rows: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = SnapCase<T>> {
    (regimes, 1usize..=6, rows)
        .prop_flat_map(|(r, d, n)| {
            (
                matrix(Just(n), d, T::values(r)),
                vec(f64::values(r), d),
                proptest::option::weighted(0.3, any::<Index>()),
                vec(proptest::bool::weighted(0.3), n),
                Just(d),
            )
        })
        .prop_map(|(pool, v, copy, used, d)| SnapCase {
            v: vector_or_row(v, copy, &pool, d),
            pool,
            used,
            d,
        })
}

fn snap_robust<T: Float>(case: SnapCase<T>) -> TestCaseResult {
    let SnapCase { pool, v, used, d } = case;
    let rows = Rows::new("train", &pool, d).unwrap();
    let got = nearest_unused(rows, &v, &used);
    let again = nearest_unused(rows, &v, &used);
    prop_assert_eq!(
        got.map(|(i, s)| (i, s.to_bits())),
        again.map(|(i, s)| (i, s.to_bits()))
    );
    let Some((idx, dist)) = got else {
        prop_assert!(used.iter().all(|&u| u), "None with unused rows left");
        return Ok(());
    };
    prop_assert!(idx < rows.len() && !used[idx], "picked row {idx}");
    if all_finite(&pool) && all_finite(&v) {
        count_brute_force_check();
        // The lowest-index unused row at the smallest exact distance.
        let mut best: Option<(usize, f64)> = None;
        for i in (0..rows.len()).filter(|&i| !used[i]) {
            let s = sq_dist(&v, rows.row(i));
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((i, s));
            }
        }
        let (bi, bs) = best.unwrap();
        prop_assert_eq!((idx, dist.to_bits()), (bi, bs.to_bits()));
        let naive = naive_sq(&v, rows.row(idx));
        prop_assert!(
            (dist - naive).abs() <= 1e-12 * naive || (naive.is_infinite() && dist.is_infinite()),
            "distance {dist} vs {naive}"
        );
    }
    Ok(())
}

#[test]
fn snap_f64() {
    check(
        "snap_f64",
        cases(1536, 1),
        snap_case::<f64>(regime(), 0..=40),
        snap_robust,
    );
}

#[test]
fn snap_f32() {
    check(
        "snap_f32",
        cases(1536, 1),
        snap_case::<f32>(regime(), 0..=40),
        snap_robust,
    );
}

// ---------------------------------------------------------------------------------------------
// K-Means

#[derive(Debug, Clone)]
struct AssignCase<T> {
    x: Vec<T>,
    centers: Vec<f64>,
    d: usize,
}

fn assign_case<T: Float>(
    regimes: BoxedStrategy<Regime>,
    rows: std::ops::RangeInclusive<usize>,
    centers: std::ops::RangeInclusive<usize>,
    dims: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = AssignCase<T>> {
    (regimes, dims, rows, centers)
        .prop_flat_map(|(r, d, n, k)| {
            // Centers on the data's scale: copies of rows, or values of the same regime.
            (
                matrix(Just(n), d, T::values(r)),
                matrix(Just(k), d, f64::values(r)),
                vec(proptest::option::weighted(0.3, any::<Index>()), k),
                Just(d),
            )
        })
        .prop_map(|(x, mut centers, copies, d)| {
            for (c, copy) in copies.into_iter().enumerate() {
                let row = vector_or_row(centers[c * d..(c + 1) * d].to_vec(), copy, &x, d);
                centers[c * d..(c + 1) * d].copy_from_slice(&row);
            }
            AssignCase { x, centers, d }
        })
}

fn assign_robust<T: Float>(case: AssignCase<T>) -> TestCaseResult {
    let AssignCase { x, centers, d } = case;
    let xr = Rows::new("X", &x, d).unwrap();
    let norms = row_norms(xr);
    let run = || {
        let mut labels = vec![u32::MAX; xr.len()];
        let mut dists = vec![f64::NAN; xr.len()];
        assign(
            xr,
            &norms,
            Rows::new("centers", &centers, d).unwrap(),
            &mut labels,
            &mut dists,
        );
        (labels, dists)
    };
    let (labels, dists) = run();
    let (labels2, dists2) = run();
    prop_assert_eq!(&labels, &labels2);
    prop_assert!(same_bits(&dists, &dists2));
    if all_finite(&x) && all_finite(&centers) {
        count_brute_force_check();
    }
    check_assignment(&x, &centers, d, &labels, &dists)
}

#[test]
fn kmeans_assign_f64() {
    check(
        "kmeans_assign_f64",
        cases(1024, 1),
        assign_case::<f64>(regime(), 0..=40, 1..=6, 1..=4),
        assign_robust,
    );
}

#[test]
fn kmeans_assign_f32() {
    check(
        "kmeans_assign_f32",
        cases(1024, 1),
        assign_case::<f32>(regime(), 0..=40, 1..=6, 1..=4),
        assign_robust,
    );
}

#[derive(Debug, Clone)]
struct KMeansCase<T> {
    x: Vec<T>,
    d: usize,
    params: KMeansParams,
    abort: bool,
}

fn kmeans_case<T: Float>(
    regimes: BoxedStrategy<Regime>,
    rows: std::ops::RangeInclusive<usize>,
    dims: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = KMeansCase<T>> {
    (regimes, dims, rows)
        .prop_flat_map(|(r, d, n)| {
            (
                matrix(Just(n), d, T::values(r)),
                Just((d, r)),
                prop_oneof![
                    8 => 1usize..=n.max(1),
                    1 => 0usize..=n + 1,
                    1 => Just(usize::MAX),
                ],
                prop_oneof![6 => 0usize..=12, 1 => Just(100usize)],
                mostly(
                    vec![0.0, 1e-4, 1e-2, 1e30],
                    vec![-1e-4, f64::NAN, f64::INFINITY],
                ),
                prop_oneof![12 => 1usize..=3, 1 => Just(0usize)],
                any::<u64>(),
                prop_oneof![4 => 0usize..=n + 2, 1 => Just(usize::MAX)],
                (
                    // 0: k-means++, 1: random rows, 2: explicit centers, 3: centers with
                    // NaN/inf possible, 4: one value short.
                    prop_oneof![8 => 0u8..=2, 1 => 3u8..=4],
                    proptest::bool::weighted(0.1),
                ),
            )
        })
        .prop_flat_map(
            |(x, (d, r), k, max_iter, tol, n_init, seed, sample, (init, abort))| {
                // Explicit centers: k×d values (sometimes one too few, sometimes non-finite).
                let len = (k.min(64) * d).saturating_sub(usize::from(init == 4));
                let values = if init == 3 {
                    f64::values(Regime::Hostile)
                } else {
                    f64::values(r)
                };
                (
                    Just((x, d, k, max_iter, tol, n_init, seed, sample, init, abort)),
                    vec(values, len),
                )
            },
        )
        .prop_map(
            |((x, d, k, max_iter, tol, n_init, seed, sample, init, abort), centers)| KMeansCase {
                x,
                d,
                params: KMeansParams {
                    n_clusters: k,
                    max_iter,
                    tol,
                    n_init,
                    seed,
                    init: match init {
                        0 => KMeansInit::KMeansPlusPlus,
                        1 => KMeansInit::Random,
                        _ => KMeansInit::Centers {
                            values: centers,
                            dim: d,
                        },
                    },
                    init_sample_size: sample,
                },
                abort,
            },
        )
}

fn kmeans_robust<T: Float>(case: KMeansCase<T>) -> TestCaseResult {
    let KMeansCase {
        x,
        d,
        params,
        abort,
    } = case;
    let xr = Rows::new("X", &x, d).unwrap();
    let n = xr.len();
    let k = params.n_clusters;
    let mut polls = 0usize;
    let mut poll = |iteration: usize, inertia: f64| {
        polls += 1;
        let _ = inertia;
        if iteration == 0 {
            return Err(GioError::invalid("poll", "iterations count from 1"));
        }
        if abort {
            Err(GioError::Aborted)
        } else {
            Ok(())
        }
    };
    let first = params
        .clone()
        .check()
        .and_then(|p| kmeans(xr, &p, &mut poll));
    let second = params.clone().check().and_then(|p| {
        kmeans(xr, &p, &mut |_, _| {
            if abort {
                Err(GioError::Aborted)
            } else {
                Ok(())
            }
        })
    });
    let bits = |r: &Result<KMeansFit, GioError>| {
        r.as_ref()
            .map(|f| {
                (
                    f.centers.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    f.labels.clone(),
                    f.inertia.to_bits(),
                    f.n_iter,
                )
            })
            .map_err(|e| e.to_string())
    };
    prop_assert_eq!(bits(&first), bits(&second));
    let invalid = invalid_kmeans_arguments(&params, n, d);
    if !invalid.is_empty() {
        return expect_invalid(&first, &invalid);
    }
    if abort {
        prop_assert_eq!(first.as_ref().err(), Some(&GioError::Aborted));
        prop_assert_eq!(polls, 1);
        return Ok(());
    }
    let fit = first.map_err(|e| TestCaseError::fail(format!("valid input refused: {e}")))?;
    prop_assert_eq!(fit.centers.len(), k * d);
    prop_assert!((1..=params.max_iter.max(1)).contains(&fit.n_iter));
    // The inertia is the sum of the exact distances to the reported centers.
    let dists: Vec<f64> = (0..n)
        .map(|i| {
            let c = fit.labels[i].min(k as u32 - 1) as usize;
            sq_dist(xr.row(i), &fit.centers[c * d..(c + 1) * d])
        })
        .collect();
    check_assignment(&x, &fit.centers, d, &fit.labels, &dists)?;
    prop_assert_eq!(fit.inertia.to_bits(), dists.iter().sum::<f64>().to_bits());
    // Squares and sums of float32 data, or of float64 data up to 1e150, cannot overflow.
    if all_finite(&x) && (T::PRECISION == Precision::F32 || largest_magnitude(&x) <= 1e150) {
        count_brute_force_check();
        prop_assert!(all_finite(&fit.centers), "centers {:?}", fit.centers);
        prop_assert!(fit.inertia.is_finite(), "inertia {}", fit.inertia);
        if let KMeansInit::Centers { values: c, .. } = &params.init {
            inertia_not_above_start(xr, c, &fit)?;
        }
    }
    Ok(())
}

/// Argument names whose values are out of their documented domain, for `n` rows of `d` values.
fn invalid_kmeans_arguments(params: &KMeansParams, n: usize, d: usize) -> Vec<&'static str> {
    let k = params.n_clusters;
    let mut invalid = Vec::new();
    if k == 0 || k > n {
        invalid.push("n_clusters");
    }
    if params.n_init == 0 {
        invalid.push("n_init");
    }
    if params.max_iter == 0 {
        invalid.push("max_iter");
    }
    if !(params.tol >= 0.0 && params.tol.is_finite()) {
        invalid.push("tol");
    }
    if let KMeansInit::Centers { values: c, .. } = &params.init {
        if c.len() != k.saturating_mul(d) || !all_finite(c) {
            invalid.push("init");
        }
    }
    invalid
}

/// Lloyd's steps from the centers `c` never raise the inertia beyond the assignments' roundoff.
fn inertia_not_above_start<T: Float>(
    xr: Rows<'_, T>,
    c: &[f64],
    fit: &KMeansFit,
) -> TestCaseResult {
    let (n, d) = (xr.len(), xr.dim());
    let c_norm_max = c
        .chunks_exact(d)
        .map(|c| norm(c).powi(2))
        .fold(0.0, f64::max)
        .max(
            fit.centers
                .chunks_exact(d)
                .map(|c| norm(c).powi(2))
                .fold(0.0, f64::max),
        );
    let mut start = 0.0;
    let mut slack = 0.0;
    for i in 0..n {
        let xi = xr.row(i);
        start += c
            .chunks_exact(d)
            .map(|c| sq_dist(xi, c))
            .fold(f64::INFINITY, f64::min);
        slack += assign_margin::<T>(d, naive_sq(xi, &vec![0.0f64; d]), c_norm_max);
    }
    let bound = start * (1.0 + 1e-9) + (fit.n_iter + 2) as f64 * slack;
    prop_assert!(
        fit.inertia <= bound,
        "inertia {} above the initial centers' {start} (bound {bound})",
        fit.inertia
    );
    Ok(())
}

#[test]
fn kmeans_fit_f64() {
    check(
        "kmeans_fit_f64",
        cases(768, 1),
        kmeans_case::<f64>(regime(), 0..=24, 1..=3),
        kmeans_robust,
    );
}

#[test]
fn kmeans_fit_f32() {
    check(
        "kmeans_fit_f32",
        cases(768, 1),
        kmeans_case::<f32>(regime(), 0..=24, 1..=3),
        kmeans_robust,
    );
}

// ---------------------------------------------------------------------------------------------
// The selection loop

/// Deterministic draws standing in for Python's `random`; optionally a broken `pick` (an index
/// past the end) and an interrupt after some polls.
struct Host {
    state: u64,
    bad_pick: bool,
    abort_after: Option<usize>,
    polls: usize,
}

impl Host {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl LoopHost for Host {
    fn random(&mut self) -> Result<f64, GioError> {
        Ok((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn pick(&mut self, n: usize) -> Result<usize, GioError> {
        if self.bad_pick || n == 0 {
            Ok(n)
        } else {
            Ok((self.next_u64() % n as u64) as usize)
        }
    }
    fn poll(&mut self) -> Result<(), GioError> {
        self.polls += 1;
        match self.abort_after {
            Some(after) if self.polls > after => Err(GioError::Aborted),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone)]
struct SelectCase<T> {
    train: Vec<T>,
    x: Vec<T>,
    w0: Vec<T>,
    d: usize,
    train_dim: usize,
    w0_dim: usize,
    opts: SelectParams,
    host_seed: u64,
    bad_pick: bool,
    abort_after: Option<usize>,
}

/// max_iter, stop_criterion, min_difference, resets_allowed, max_resets, max_data_size,
/// min_kl, max_sequential_increases.
type LoopOptions = (usize, StopCriterion, f64, bool, usize, f64, f64, usize);
/// random_restart_prob, scale_factor, v_init, grad_desc_iter, discard_nearest_for_xy, lr,
/// semantics, record_v_opts.
type DescentOptions = (f64, Option<f64>, VInit, usize, bool, f64, Semantics, bool);

fn loop_options() -> impl Strategy<Value = LoopOptions> {
    let criteria: Vec<StopCriterion> = StopCriterion::NAMES
        .iter()
        .map(|name| StopCriterion::parse(name).unwrap())
        .collect();
    (
        prop_oneof![6 => 0usize..=6, 1 => Just(usize::MAX)],
        select(criteria),
        mostly(vec![0.0, 1e-3, -1.0, 1e30], vec![f64::NAN, f64::INFINITY]),
        any::<bool>(),
        0usize..=2,
        mostly(
            vec![0.0, 0.5, 1.0, 2.0, 1e300],
            vec![-0.1, f64::NAN, f64::INFINITY],
        ),
        mostly(vec![0.0, -5.0, 1.0], vec![f64::NAN, f64::NEG_INFINITY]),
        0usize..=3,
    )
}

fn descent_options() -> impl Strategy<Value = DescentOptions> {
    let v_inits: Vec<VInit> = VInit::NAMES
        .iter()
        .map(|name| VInit::parse(name).unwrap())
        .collect();
    (
        mostly(vec![0.0, 0.3, 1.0], vec![-0.01, 1.01, f64::NAN]),
        prop_oneof![
            12 => Just(None),
            12 => select(vec![0.0, 0.1, 1.0, 1e300, -1.0]).prop_map(Some),
            1 => select(vec![f64::NAN, f64::INFINITY]).prop_map(Some),
        ],
        select(v_inits),
        prop_oneof![8 => 0usize..=4, 1 => Just(usize::MAX / 2)],
        any::<bool>(),
        mostly(
            vec![0.01, 0.1, 1.0, 0.0, -0.01, 1e300],
            vec![f64::NAN, f64::INFINITY],
        ),
        select(vec![Semantics::Reference, Semantics::Fixed]),
        any::<bool>(),
    )
}

fn options() -> impl Strategy<Value = SelectParams> {
    (loop_options(), descent_options()).prop_map(
        |(
            (
                max_iter,
                stop_criterion,
                min_difference,
                resets_allowed,
                max_resets,
                max_data_size,
                min_kl,
                max_sequential_increases,
            ),
            (
                random_restart_prob,
                scale_factor,
                v_init,
                grad_desc_iter,
                discard_nearest_for_xy,
                lr,
                semantics,
                record_v_opts,
            ),
        )| SelectParams {
            k: 1,
            max_iter,
            stop_criterion,
            min_difference,
            resets_allowed,
            max_resets,
            max_data_size,
            min_kl,
            max_sequential_increases,
            random_restart_prob,
            scale_factor,
            v_init,
            grad_desc_iter,
            discard_nearest_for_xy,
            lr,
            semantics,
            record_v_opts,
            ..SelectParams::default()
        },
    )
}

fn select_case<T: Float>() -> impl Strategy<Value = SelectCase<T>> {
    (
        regime(),
        1usize..=3,
        prop_oneof![6 => 3usize..=16, 1 => 0usize..=2],
        prop_oneof![16 => 2usize..=8, 1 => 0usize..=1],
        prop_oneof![12 => 2usize..=4, 1 => 0usize..=1],
    )
        .prop_flat_map(|(r, d, n_train, n_x, m)| {
            let other_dim = prop_oneof![24 => Just(d), 1 => 1usize..=4];
            (
                (Just((d, r, n_train, m)), other_dim.clone(), other_dim),
                matrix(Just(n_x), d, T::values(r)),
                options(),
                prop_oneof![
                    16 => 1usize..n_x.max(2),
                    1 => 0usize..=n_x + 1,
                    1 => Just(usize::MAX),
                ],
                (
                    any::<u64>(),
                    proptest::bool::weighted(0.05),
                    proptest::option::weighted(0.1, 0usize..=30),
                ),
            )
        })
        .prop_flat_map(
            |(((d, r, n_train, m), train_dim, w0_dim), x, opts, k, host)| {
                (
                    Just((d, train_dim, w0_dim, x, opts, k, host)),
                    matrix(Just(n_train), train_dim, T::values(r)),
                    matrix(Just(m), w0_dim, T::values(r)),
                )
            },
        )
        .prop_map(
            |(
                (d, train_dim, w0_dim, x, mut opts, k, (host_seed, bad_pick, abort_after)),
                train,
                w0,
            )| {
                opts.k = k;
                // A descent that long only ends by the host's interrupt.
                let abort_after = if opts.grad_desc_iter > 1000 {
                    abort_after.or(Some(20))
                } else {
                    abort_after
                };
                SelectCase {
                    train,
                    x,
                    w0,
                    d,
                    train_dim,
                    w0_dim,
                    opts,
                    host_seed,
                    bad_pick,
                    abort_after,
                }
            },
        )
}

/// Argument names whose values are out of their documented domain.
fn invalid_select_arguments(case: &SelectCase<impl Element>) -> Vec<&'static str> {
    let o = &case.opts;
    let mut invalid = Vec::new();
    for (name, value) in [
        ("lr", o.lr),
        ("min_difference", o.min_difference),
        ("min_kl", o.min_kl),
    ] {
        if !value.is_finite() {
            invalid.push(name);
        }
    }
    if !(o.max_data_size.is_finite() && o.max_data_size >= 0.0) {
        invalid.push("max_data_size");
    }
    if !(0.0..=1.0).contains(&o.random_restart_prob) {
        invalid.push("random_restart_prob");
    }
    if o.scale_factor.is_some_and(|s| !s.is_finite()) {
        invalid.push("scale_factor");
    }
    if o.semantics == Semantics::Fixed && o.stop_criterion == StopCriterion::Never {
        invalid.push("stop_criterion");
    }
    if case.train_dim != case.d {
        invalid.push("train");
    }
    let m = case.w0.len() / case.w0_dim;
    if case.w0_dim != case.d || m == 0 || (o.discard_nearest_for_xy && m < 2) {
        invalid.push("D");
    }
    let n = case.x.len() / case.d;
    if n < 2 {
        invalid.push("X");
    }
    if o.k == 0 || o.k >= n {
        invalid.push("k");
    }
    invalid
}

fn select_robust<T: Float>(case: SelectCase<T>) -> TestCaseResult {
    let run = || -> (Result<Selection, GioError>, usize) {
        let mut host = Host {
            state: case.host_seed,
            bad_pick: case.bad_pick,
            abort_after: case.abort_after,
            polls: 0,
        };
        let result = case.opts.clone().check().and_then(|opts| {
            gradient_select(
                Rows::new("train", &case.train, case.train_dim).unwrap(),
                Rows::new("X", &case.x, case.d).unwrap(),
                Rows::new("D", &case.w0, case.w0_dim).unwrap(),
                &opts,
                &mut host,
            )
        });
        (result, host.polls)
    };
    let (first, polls) = run();
    // Debug prints every field, NaN included: equal strings are equal results.
    prop_assert_eq!(format!("{first:?}"), format!("{:?}", run().0));
    let invalid = invalid_select_arguments(&case);
    if !invalid.is_empty() {
        return expect_invalid(&first, &invalid);
    }
    let fixed = case.opts.semantics == Semantics::Fixed;
    let selection = match first {
        Ok(selection) => selection,
        Err(e) => return expected_select_error(&case, e, polls),
    };
    let (d, n_train) = (case.d, case.train.len() / case.d);
    prop_assert!(selection.indices.iter().all(|&i| i < n_train));
    prop_assert_eq!(selection.kl_trace.len(), selection.indices.len());
    prop_assert!(selection.candidate_kl.len() >= selection.indices.len());
    // One descent per candidate, and one more when the pool ran dry after it.
    let exhausted = usize::from(selection.stop_reason == StopReason::PoolExhausted);
    prop_assert_eq!(
        selection.descent_iters.len(),
        selection.candidate_kl.len() + exhausted
    );
    let recorded = if case.opts.record_v_opts {
        d * selection.descent_iters.len()
    } else {
        0
    };
    prop_assert_eq!(selection.v_opts.len(), recorded);
    prop_assert_eq!(selection.used.len(), n_train);
    prop_assert_eq!(selection.v.len(), d);
    if exhausted == 1 {
        prop_assert!(fixed);
        prop_assert!(selection.used.iter().all(|&u| u));
    }
    if all_finite(&case.train) && all_finite(&case.x) && all_finite(&case.w0) {
        trace_is_the_estimate(&case, &selection)?;
    }
    Ok(())
}

/// The errors a valid case may end with, each only where it is due.
fn expected_select_error<T: Float>(
    case: &SelectCase<T>,
    error: GioError,
    polls: usize,
) -> TestCaseResult {
    let opts = &case.opts;
    let fixed = opts.semantics == Semantics::Fixed;
    match error {
        // The interrupt, when the host sent one.
        GioError::Aborted => {
            prop_assert!(case.abort_after.is_some_and(|a| polls > a));
        }
        // A host whose pick is out of range, for the jump initialisation.
        e @ GioError::InvalidArgument { name: "rng", .. } => {
            prop_assert!(case.bad_pick && opts.v_init == VInit::Jump, "{e}");
        }
        // Fixed semantics refuse a non-finite automatic scale factor.
        e @ GioError::InvalidArgument {
            name: "scale_factor",
            ..
        } => {
            prop_assert!(fixed && opts.scale_factor.is_none(), "{e}");
        }
        // The reference raises when the pool runs dry.
        GioError::PoolExhausted => {
            prop_assert!(!fixed);
        }
        e => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
    }
    Ok(())
}

/// Every KL of the trace is the estimator's value for the selection so far (finite data).
fn trace_is_the_estimate<T: Float>(case: &SelectCase<T>, selection: &Selection) -> TestCaseResult {
    let (d, opts) = (case.d, &case.opts);
    count_brute_force_check();
    prop_assert!(selection.kl_start.is_finite());
    prop_assert!(
        all_finite(&selection.candidate_kl),
        "{:?}",
        selection.candidate_kl
    );
    let eps = KlParams::new(1, false).eps;
    let mut w = case.w0.clone();
    let (start, tol) = naive_kl(&case.x, &w, d, opts.k, eps, opts.discard_nearest_for_xy);
    prop_assert!((selection.kl_start - start).abs() <= tol);
    for (&i, &kl) in selection.indices.iter().zip(&selection.kl_trace) {
        w.extend_from_slice(&case.train[i * d..(i + 1) * d]);
        let (expected, tol) = naive_kl(&case.x, &w, d, opts.k, eps, opts.discard_nearest_for_xy);
        prop_assert!(
            (kl - expected).abs() <= tol,
            "KL after row {i}: {kl} vs brute force {expected}"
        );
    }
    Ok(())
}

#[test]
fn select_f64() {
    check(
        "select_f64",
        cases(1024, 1),
        select_case::<f64>(),
        select_robust,
    );
}

#[test]
fn select_f32() {
    check(
        "select_f32",
        cases(1024, 1),
        select_case::<f32>(),
        select_robust,
    );
}

// ---------------------------------------------------------------------------------------------
// Larger shapes: parallel chunks, several Gram tiles and SIMD blocks (few cases each)

#[test]
fn large_shapes() {
    check(
        "large_kth_neighbour",
        cases(8, 128),
        kth_case::<f32>(finite_regime(), 300..=400),
        kth_neighbour_robust,
    );
    check(
        "large_gradient",
        cases(8, 128),
        gradient_case::<f64>(finite_regime(), 3000..=4000),
        kl_gradient_robust,
    );
    check(
        "large_snap",
        cases(8, 128),
        snap_case::<f32>(finite_regime(), 5000..=6000),
        snap_robust,
    );
    check(
        "large_assign_f32",
        cases(8, 128),
        assign_case::<f32>(finite_regime(), 1500..=2000, 30..=40, 5..=9),
        assign_robust,
    );
    check(
        "large_assign_f64",
        cases(8, 128),
        assign_case::<f64>(finite_regime(), 1500..=2000, 30..=40, 5..=9),
        assign_robust,
    );
    check(
        "large_kmeans",
        cases(8, 128),
        kmeans_case::<f32>(finite_regime(), 2000..=2500, 4..=6),
        kmeans_robust,
    );
}

// ---------------------------------------------------------------------------------------------
// Regressions found by the targets above

/// kl_divergence named the selection "W" when y had the wrong number of columns.
#[test]
fn kl_divergence_names_y_when_its_columns_differ() {
    let x = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
    let y = [0.0f64, 1.0, 2.0];
    let result = kl_divergence(
        Rows::new("X", &x, 2).unwrap(),
        Rows::new("y", &y, 3).unwrap(),
        KlParams::new(1, false),
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "y: has 3 columns but X has 2"
    );
}

/// A negative or non-finite ε made every log NaN: the estimate came back NaN (or off) silently.
#[test]
fn eps_outside_its_domain_is_refused() {
    let x = [0.0f64, 1.0, 2.0, 3.0];
    let rows = Rows::new("X", &x, 1).unwrap();
    for eps in [-1e-8, -1.0, f64::NAN, f64::INFINITY] {
        let params = KlParams {
            k: 1,
            eps,
            discard_nearest_for_xy: false,
        };
        let err = kl_divergence(rows, rows, params).unwrap_err();
        let message = err.to_string();
        let problem = if eps.is_finite() {
            "eps: must be >= 0.0, got"
        } else {
            "eps: must be finite, got"
        };
        assert!(message.starts_with(problem), "{message}");
        assert!(KlState::new(rows, rows, params).is_err());
    }
    let zero = KlParams {
        eps: 0.0,
        ..KlParams::new(1, false)
    };
    assert!(kl_divergence(rows, rows, zero).unwrap().is_finite());
}

/// On AVX-512 the float32 nearest-center kernel overflowed (|x| ≳ 1e19) or underflowed
/// (|x| ≲ 1e-20) float32 and labelled every row with center 0.
#[test]
fn float32_assignment_is_right_at_extreme_magnitudes() {
    for scale in [1.0f32, 1e-30, 1e-20, 1e-15, 1e17, 1e19, 1e30, 3e38 / 9.0] {
        // 1-D points 0..9 (scaled); centers at 0 and 9: rows 0..=4 go to center 0.
        let x: Vec<f32> = (0..10).map(|i| i as f32 * scale).collect();
        let centers = [0.0f64, 9.0 * scale as f64];
        let rows = Rows::new("X", &x, 1).unwrap();
        let mut labels = vec![u32::MAX; 10];
        let mut dists = vec![0.0; 10];
        assign(
            rows,
            &row_norms(rows),
            Rows::new("centers", &centers, 1).unwrap(),
            &mut labels,
            &mut dists,
        );
        assert_eq!(labels, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], "scale {scale:e}");
        // And a whole fit separates the two groups.
        let params = KMeansParams {
            n_clusters: 2,
            max_iter: 50,
            tol: 0.0,
            n_init: 1,
            seed: 1,
            init: KMeansInit::Centers {
                values: centers.to_vec(),
                dim: 1,
            },
            init_sample_size: 0,
        };
        let fit = kmeans(rows, &params.check().unwrap(), &mut |_, _| Ok(())).unwrap();
        assert_eq!(
            fit.labels,
            [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            "scale {scale:e}"
        );
    }
}

/// `grad_desc_iter * 3` overflowed (a panic in debug builds, a wrapped step count in release).
#[test]
fn huge_grad_desc_iter_does_not_overflow() {
    let x = [0.0f64, 1.0, 2.0, 3.0, 4.0, 6.0];
    let d0 = [5.0f64, 5.5];
    let opts = SelectParams {
        k: 1,
        grad_desc_iter: usize::MAX / 2,
        ..SelectParams::default()
    };
    let mut host = Host {
        state: 1,
        bad_pick: false,
        abort_after: Some(100),
        polls: 0,
    };
    let result = gradient_select(
        Rows::new("train", &x, 1).unwrap(),
        Rows::new("X", &x, 1).unwrap(),
        Rows::new("D", &d0, 1).unwrap(),
        &opts.check().unwrap(),
        &mut host,
    );
    // The only way out of a descent that long is the host's interrupt.
    assert_eq!(result.unwrap_err(), GioError::Aborted);
    assert_eq!(host.polls, 101);
}

/// `max_iter + 2` (the look-ahead's bound) overflowed for max_iter = usize::MAX.
#[test]
fn unbounded_max_iter_runs_until_the_pool_is_exhausted() {
    let train = [0.5f64, 1.5, 2.5, 3.5, 4.5];
    let x = [0.0f64, 1.0, 2.0, 3.0, 4.0, 6.0];
    let d0 = [5.0f64, 5.5];
    let opts = SelectParams {
        k: 1,
        max_iter: usize::MAX,
        stop_criterion: StopCriterion::DataSize,
        max_data_size: 1.0,
        v_init: VInit::Mean,
        grad_desc_iter: 2,
        semantics: Semantics::Fixed,
        ..SelectParams::default()
    };
    let mut host = Host {
        state: 1,
        bad_pick: false,
        abort_after: None,
        polls: 0,
    };
    let selection = gradient_select(
        Rows::new("train", &train, 1).unwrap(),
        Rows::new("X", &x, 1).unwrap(),
        Rows::new("D", &d0, 1).unwrap(),
        &opts.check().unwrap(),
        &mut host,
    )
    .unwrap();
    assert_eq!(selection.stop_reason, StopReason::PoolExhausted);
    let mut picked = selection.indices.clone();
    picked.sort_unstable();
    assert_eq!(picked, [0, 1, 2, 3, 4]);
}
