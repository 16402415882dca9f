//! The density-ratio core (src/ratio/): moments, Cholesky, scoring, top-B, Gumbel keys, k-NN
//! counts, logistic regression and the Gaussian estimator, each against naive float64 loops on
//! small random data, plus the determinism they promise: the same bits for any batching, thread
//! count and fused SIMD level (checked in child processes with GIO_RS_NO_AVX512 and
//! RAYON_NUM_THREADS set).

// Naive index loops are the point of the reference formulas here.
#![allow(clippy::needless_range_loop)]

use gio_rs::distance::sq_dist;
use gio_rs::ratio::folds::{target_folds, FoldedMoments};
use gio_rs::ratio::gaussian::{fit_gaussian, ALPHA_GRID};
use gio_rs::ratio::knn::{knn_target_counts, KnnReference};
use gio_rs::ratio::logistic::{fit_logistic, LogisticOptions};
use gio_rs::ratio::moments::{weighted_scatter, Moments, MomentsAccumulator, BLOCK_ROWS};
use gio_rs::ratio::score::{gumbel_keys, linear_scores, uniform_at, TopB};
use gio_rs::ratio::solve::Cholesky;
use gio_rs::rng::SplitMix64;
use gio_rs::{Element, GioError, Rows};

/// `n × d` values: uniform noise plus a per-column offset (uncentred data).
fn data<T: Element>(n: usize, d: usize, offset: f64, seed: u64) -> Vec<T> {
    let mut rng = SplitMix64::new(seed);
    (0..n * d)
        .map(|i| T::from_f64(rng.next_f64() * (1.0 + (i % d) as f64 * 0.1) + offset))
        .collect()
}

fn rows<T: Element>(values: &[T], d: usize) -> Rows<'_, T> {
    Rows::new("x", values, d).unwrap()
}

fn naive_moments<T: Element>(x: &[T], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let mut mean = vec![0.0; d];
    for r in 0..n {
        for j in 0..d {
            mean[j] += x[r * d + j].to_f64() / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    for r in 0..n {
        for i in 0..d {
            for j in 0..d {
                let (a, b) = (
                    x[r * d + i].to_f64() - mean[i],
                    x[r * d + j].to_f64() - mean[j],
                );
                cov[i * d + j] += a * b / n as f64;
            }
        }
    }
    (mean, cov)
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * scale)
}

fn moments_of<T: Element>(x: &[T], d: usize, batches: &[usize]) -> Moments {
    let mut acc = MomentsAccumulator::new(d).unwrap();
    let mut start = 0;
    let n = x.len() / d;
    for &b in batches.iter().cycle() {
        if start >= n {
            break;
        }
        let end = (start + b).min(n);
        acc.add(rows(&x[start * d..end * d], d)).unwrap();
        start = end;
    }
    acc.finish().unwrap()
}

#[test]
fn moments_match_naive_loops_for_f32_and_f64() {
    // Dimensions off the Gram tile's 8 × 24 shape too (1, 7, 25, 385).
    let shapes = [(1, 3), (7, 5), (BLOCK_ROWS, 9), (3 * BLOCK_ROWS + 17, 37)];
    let off_tile = [
        (9, 1),
        (BLOCK_ROWS + 3, 7),
        (2 * BLOCK_ROWS + 1, 25),
        (BLOCK_ROWS + 5, 385),
    ];
    for (n, d) in shapes.into_iter().chain(off_tile) {
        let x64: Vec<f64> = data(n, d, 1e3, n as u64);
        let x32: Vec<f32> = data(n, d, 1e3, n as u64);
        for (m, (mean, cov)) in [
            (moments_of(&x64, d, &[n]), naive_moments(&x64, d)),
            (moments_of(&x32, d, &[n]), naive_moments(&x32, d)),
        ] {
            assert_eq!(m.count, n);
            assert!(close(&m.mean, &mean, 1e-14), "mean n={n} d={d}");
            assert!(close(&m.covariance, &cov, 1e-10), "cov n={n} d={d}");
        }
    }
}

#[test]
fn moments_are_the_same_bits_for_every_batching() {
    let (n, d) = (5 * BLOCK_ROWS + 3, 11);
    let x: Vec<f32> = data(n, d, 50.0, 3);
    let whole = moments_of(&x, d, &[n]);
    for batches in [
        &[1usize][..],
        &[255],
        &[256],
        &[257, 3],
        &[1000, 1, 64],
        &[7, 300, 2],
    ] {
        assert_eq!(moments_of(&x, d, batches), whole, "batches {batches:?}");
    }
}

#[test]
fn merged_ranges_are_deterministic_and_match_the_whole() {
    let (n, d) = (4 * BLOCK_ROWS + 100, 6);
    let x: Vec<f64> = data(n, d, -20.0, 4);
    let cut = 2 * BLOCK_ROWS + 31;
    let run = |shift: Option<&[f64]>| {
        let make = || match shift {
            Some(s) => MomentsAccumulator::with_shift(s).unwrap(),
            None => MomentsAccumulator::new(d).unwrap(),
        };
        let (mut a, mut b) = (make(), make());
        a.add(rows(&x[..cut * d], d)).unwrap();
        b.add(rows(&x[cut * d..], d)).unwrap();
        a.merge(&b).unwrap();
        a.finish().unwrap()
    };
    let (mean, cov) = naive_moments(&x, d);
    for shift in [None, Some(&[-19.5; 6][..])] {
        let m = run(shift);
        assert_eq!(m, run(shift));
        assert_eq!(m.count, n);
        assert!(close(&m.mean, &mean, 1e-13) && close(&m.covariance, &cov, 1e-10));
    }
}

#[test]
fn empty_and_mismatched_inputs_are_named_errors() {
    let acc = MomentsAccumulator::new(3).unwrap();
    assert!(matches!(
        acc.finish(),
        Err(GioError::InvalidArgument { name: "rows", .. })
    ));
    let mut acc = MomentsAccumulator::new(3).unwrap();
    let x = [1.0f64; 4];
    let err = acc.add(rows(&x, 2)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rows: has 2 columns, expected 3"),
        "{err}"
    );
    assert!(MomentsAccumulator::new(0).is_err());
}

#[test]
fn weighted_scatter_matches_naive_loops() {
    // d = 27: full 8 × 24 Gram tiles and a narrower last group of columns.
    for d in [5, 27] {
        let n = BLOCK_ROWS + 40;
        let x: Vec<f64> = data(n, d, 2.0, 5);
        let w: Vec<f64> = (0..n).map(|i| (i % 7) as f64 * 0.3).collect();
        let shift: Vec<f64> = (1..=d).map(|i| i as f64).collect();
        let got = weighted_scatter(rows(&x, d), &w, &shift);
        let mut want = vec![0.0; d * d];
        for r in 0..n {
            for i in 0..d {
                for j in 0..d {
                    want[i * d + j] += w[r] * (x[r * d + i] - shift[i]) * (x[r * d + j] - shift[j]);
                }
            }
        }
        assert!(close(&got, &want, 1e-12), "d={d}");
    }
}

#[test]
fn cholesky_solves_and_refuses_what_is_not_positive_definite() {
    let d = 6;
    let a: Vec<f64> = data(20, d, 0.0, 6);
    let (_, cov) = naive_moments(&a, d);
    let b: Vec<f64> = (0..d).map(|i| i as f64 - 2.5).collect();
    let x = Cholesky::factor("covariance", &cov, d, 0.1)
        .unwrap()
        .solve(&b);
    for i in 0..d {
        let row: f64 = (0..d)
            .map(|j| (cov[i * d + j] + if i == j { 0.1 } else { 0.0 }) * x[j])
            .sum();
        assert!((row - b[i]).abs() < 1e-9, "row {i}");
    }
    // A constant column: singular without a ridge, fine with one.
    let mut c = cov.clone();
    for j in 0..d {
        c[2 * d + j] = 0.0;
        c[j * d + 2] = 0.0;
    }
    let err = Cholesky::factor("covariance", &c, d, 0.0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("covariance: is not positive definite"),
        "{err}"
    );
    assert!(Cholesky::factor("covariance", &c, d, 1e-6).is_ok());
}

#[test]
fn linear_scores_match_naive_dots() {
    let (n, d) = (1000, 13);
    let x: Vec<f32> = data(n, d, 1.0, 7);
    let w: Vec<f64> = (0..d).map(|j| (j as f64).sin()).collect();
    let s = linear_scores(rows(&x, d), &w, 0.5);
    for i in 0..n {
        let want: f64 = 0.5 + (0..d).map(|j| x[i * d + j] as f64 * w[j]).sum::<f64>();
        assert!((s[i] - want).abs() < 1e-12 * (1.0 + want.abs()));
    }
}

#[test]
fn top_b_breaks_ties_to_the_lower_row_whatever_the_batching() {
    let keys = [1.0, 3.0, 3.0, f64::NAN, 2.0, 3.0, -1.0, 2.0];
    let mut whole = TopB::new(5);
    whole.push(&keys, 100);
    let (rows_, got) = whole.clone().finish();
    assert_eq!(rows_, vec![101, 102, 105, 104, 107]);
    assert_eq!(got, vec![3.0, 3.0, 3.0, 2.0, 2.0]);
    // Batches in any order, merged partitions: the same answer.
    let mut a = TopB::new(5);
    a.push(&keys[5..], 105);
    a.push(&keys[..2], 100);
    let mut b = TopB::new(5);
    b.push(&keys[2..5], 102);
    a.merge(&b);
    assert_eq!(a.finish(), whole.finish());
    // NaN ranks last; capacity above the count keeps everything.
    let mut all = TopB::new(20);
    all.push(&keys, 0);
    let (r, _) = all.finish();
    assert_eq!(r.len(), 8);
    assert_eq!(r[7], 3);
}

#[test]
fn gumbel_keys_depend_only_on_seed_and_row() {
    let log_r: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.01).cos()).collect();
    let whole = gumbel_keys(&log_r, 42, 0);
    let mut parts = gumbel_keys(&log_r[..333], 42, 0);
    parts.extend(gumbel_keys(&log_r[333..], 42, 333));
    assert_eq!(whole, parts);
    assert_ne!(whole, gumbel_keys(&log_r, 43, 0));
    // The (row + 1)-th draw of SplitMix64::new(seed), mapped into (0, 1).
    let mut rng = SplitMix64::new(42);
    for row in 0..100u64 {
        let h = rng.next_u64();
        assert_eq!(
            uniform_at(42, row),
            ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        );
    }
    let u: Vec<f64> = (0..10000).map(|i| uniform_at(7, i)).collect();
    assert!(u.iter().all(|&v| v > 0.0 && v < 1.0));
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    assert!((mean - 0.5).abs() < 0.02, "{mean}");
}

/// Target rows among the k nearest by brute force (ties to the lower reference index).
fn brute_counts(
    q: &[f64],
    reference: &[f64],
    nt: usize,
    d: usize,
    k: usize,
    own: &[i64],
) -> Vec<u32> {
    (0..q.len() / d)
        .map(|i| {
            let mut dist: Vec<(f64, usize)> = (0..reference.len() / d)
                .filter(|&j| own[i] != j as i64)
                .map(|j| {
                    let s: f64 = (0..d)
                        .map(|c| (q[i * d + c] - reference[j * d + c]).powi(2))
                        .sum();
                    (s, j)
                })
                .collect();
            dist.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            dist[..k].iter().filter(|e| e.1 < nt).count() as u32
        })
        .collect()
}

/// `brute_counts` by the exact kernel the core refines with (`sq_dist`), for any float types:
/// every reference row's distance, sorted by (distance, row).
fn brute_counts_sq_dist<T: Element, U: Element>(
    q: &[T],
    reference: &[U],
    nt: usize,
    d: usize,
    k: usize,
    own: &[i64],
) -> Vec<u32> {
    (0..q.len() / d)
        .map(|i| {
            let mut dist: Vec<(f64, usize)> = (0..reference.len() / d)
                .filter(|&j| own[i] != j as i64)
                .map(|j| {
                    (
                        sq_dist(&q[i * d..(i + 1) * d], &reference[j * d..(j + 1) * d]),
                        j,
                    )
                })
                .collect();
            dist.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            dist[..k].iter().filter(|e| e.1 < nt).count() as u32
        })
        .collect()
}

/// Several query blocks and parallel chunks, float32 and float64 rows, the float32 candidate
/// pass (moderate values, far-from-origin values where the Gram form cancels) and the float64
/// one (norms past float32's safe range, for the reference or only for some queries).
#[test]
fn knn_counts_match_brute_force_on_every_path() {
    let d = 19;
    for (offset, query_offset) in [(0.0, 0.0), (1e4, 1e4), (1e15, 1e15), (0.0, 1e15)] {
        let target: Vec<f64> = data(45, d, offset, 31);
        let background: Vec<f64> = data(260, d, offset, 32);
        let mut queries: Vec<f64> = data(600, d, offset, 33);
        // Every 7th query far away (only those take the float64 path when offsets differ),
        // and the first 50 the background rows themselves, excluded as their own neighbour.
        for (i, row) in queries.chunks_exact_mut(d).enumerate() {
            if i % 7 == 3 {
                row.iter_mut().for_each(|v| *v += query_offset - offset);
            }
        }
        queries[..50 * d].copy_from_slice(&background[..50 * d]);
        let own: Vec<i64> = (0..600).map(|i| if i < 50 { 45 + i } else { -1 }).collect();
        let all = [&target[..], &background[..]].concat();
        let reference = KnnReference {
            target: rows(&target, d),
            background: rows(&background, d),
        };
        for k in [1, 7, 100, 304] {
            let got = knn_target_counts(rows(&queries, d), &reference, k, Some(&own)).unwrap();
            let want = brute_counts_sq_dist(&queries, &all, 45, d, k, &own);
            assert_eq!(got, want, "offset={offset} k={k}");
        }
        // float32 queries and reference (rounded once, the same values for the brute force).
        let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let (t32, b32, q32) = (to32(&target), to32(&background), to32(&queries));
        let reference = KnnReference {
            target: rows(&t32, d),
            background: rows(&b32, d),
        };
        let all32 = [&t32[..], &b32[..]].concat();
        let got = knn_target_counts(rows(&q32, d), &reference, 12, Some(&own)).unwrap();
        assert_eq!(got, brute_counts_sq_dist(&q32, &all32, 45, d, 12, &own));
    }
}

#[test]
fn knn_counts_match_brute_force_with_ties_and_self_exclusion() {
    let d = 3;
    // Coarse integer grid values: many exact ties and duplicates.
    let grid = |n: usize, seed: u64| -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n * d).map(|_| rng.below(4) as f64 + 1e4).collect()
    };
    let (target, background) = (grid(30, 1), grid(70, 2));
    let queries: Vec<f64> = [&background[..20 * d], &grid(40, 3)[..]].concat();
    // The first 20 queries are background rows 0..20 (reference rows 30..50).
    let own: Vec<i64> = (0..60).map(|i| if i < 20 { 30 + i } else { -1 }).collect();
    let reference = KnnReference {
        target: rows(&target, d),
        background: rows(&background, d),
    };
    let all = [&target[..], &background[..]].concat();
    for k in [1, 5, 20, 99] {
        let got = knn_target_counts(rows(&queries, d), &reference, k, Some(&own)).unwrap();
        assert_eq!(got, brute_counts(&queries, &all, 30, d, k, &own), "k={k}");
    }
    let err = knn_target_counts(rows(&queries, d), &reference, 100, None).unwrap_err();
    assert!(err.to_string().starts_with("k: must be in 1..=99"), "{err}");
    let bad = vec![100i64; 60];
    assert!(knn_target_counts(rows(&queries, d), &reference, 3, Some(&bad)).is_err());
}

#[test]
fn logistic_fit_on_huge_values_is_not_refused() {
    // Found by the robustness suite (init rows near 1e30 fitted against a one-row sample, with
    // the balanced weights of the cross-validation's folds): an absolute 1e-12 ridge lies below
    // the Gram's rounding there and a pivot came out negative.
    let init = [[1e30, 5e29], [0.0, -1e30]];
    let neg = vec![1.0, 0.5];
    for positives in [vec![init[0]], vec![init[1]], init.to_vec()] {
        let pos: Vec<f64> = positives.concat();
        let n = positives.len() as f64;
        let mut weights = vec![0.5 / n; positives.len()];
        weights.push(0.5);
        for l2 in [1e-3, 1e-2] {
            let opts = LogisticOptions {
                l2,
                ..LogisticOptions::default()
            };
            let fit = fit_logistic(rows(&pos, 2), rows(&neg, 2), Some(&weights), opts).unwrap();
            assert!(
                fit.w.iter().all(|w| w.is_finite()) && fit.bias.is_finite(),
                "{fit:?}"
            );
        }
    }
}

#[test]
fn logistic_fit_is_stationary() {
    let d = 4;
    let pos: Vec<f64> = data(200, d, 0.3, 8);
    let neg: Vec<f64> = data(300, d, 0.0, 9);
    let l2 = 1e-2;
    let opts = LogisticOptions {
        l2,
        ..LogisticOptions::default()
    };
    let fit = fit_logistic(rows(&pos, d), rows(&neg, d), None, opts).unwrap();
    assert!(fit.converged && fit.iterations < 30);
    // Gradient of Σ softplus(−y z)/n + l2/2‖w‖² at the fit: zero.
    let n = 500.0;
    let mut grad = vec![0.0; d + 1];
    for (x, y) in pos
        .chunks(d)
        .map(|r| (r, 1.0))
        .chain(neg.chunks(d).map(|r| (r, 0.0)))
    {
        let z: f64 = fit.bias + x.iter().zip(&fit.w).map(|(a, b)| a * b).sum::<f64>();
        let r = (1.0 / (1.0 + (-z).exp()) - y) / n;
        for j in 0..d {
            grad[j] += r * x[j];
        }
        grad[d] += r;
    }
    for j in 0..d {
        grad[j] += l2 * fit.w[j];
    }
    assert!(grad.iter().all(|g| g.abs() < 1e-8), "{grad:?}");
    assert!(fit.w.iter().all(|&w| w > 0.0));
}

#[test]
fn gaussian_direction_solves_the_ridged_system() {
    let d = 5;
    let pool: Vec<f32> = data(2 * BLOCK_ROWS + 77, d, 0.0, 10);
    let target: Vec<f32> = data(40, d, 0.2, 11);
    let fit = fit_gaussian(rows(&pool, d), rows(&target, d), &ALPHA_GRID, 5, 3).unwrap();
    assert!(ALPHA_GRID.contains(&fit.alpha));
    let (mu_p, cov) = naive_moments(&pool, d);
    let (mu_t, _) = naive_moments(&target, d);
    for i in 0..d {
        let lhs: f64 = (0..d)
            .map(|j| (cov[i * d + j] + if i == j { fit.ridge } else { 0.0 }) * fit.direction.w[j])
            .sum();
        assert!((lhs - (mu_t[i] - mu_p[i])).abs() < 1e-10, "row {i}");
    }
    // The target is shifted up in every column: its scores and the calibration slope are positive.
    assert!(fit.calibration.scale > 0.0 && fit.calibration.gain > 0.0);
    assert_eq!(
        fit,
        fit_gaussian(rows(&pool, d), rows(&target, d), &ALPHA_GRID, 5, 3).unwrap()
    );
}

#[test]
fn gaussian_fit_copes_with_few_target_rows_and_constant_columns() {
    let d = 8;
    let mut pool: Vec<f64> = data(600, d, 0.0, 12);
    for r in 0..600 {
        pool[r * d + 3] = 7.0; // constant column
    }
    let target: Vec<f64> = data(3, d, 0.5, 13); // fewer rows than columns
    let fit = fit_gaussian(rows(&pool, d), rows(&target, d), &ALPHA_GRID, 5, 0).unwrap();
    assert!(fit.direction.w.iter().all(|w| w.is_finite()));
}

#[test]
fn folds_are_balanced_and_folded_moments_batch_invariant() {
    let f = target_folds(23, 5, 9);
    for fold in 0..5 {
        let c = f.iter().filter(|&&x| x == fold).count();
        assert!(c == 4 || c == 5);
    }
    assert_eq!(f, target_folds(23, 5, 9));
    let d = 4;
    let x: Vec<f32> = data(3 * BLOCK_ROWS + 9, d, 3.0, 14);
    let run = |batch: usize| {
        let mut fm = FoldedMoments::new(&[3.0; 4], 3).unwrap();
        for chunk in x.chunks(batch * d) {
            fm.add(rows(chunk, d)).unwrap();
        }
        (
            fm.combined(None).unwrap().finish().unwrap(),
            fm.combined(Some(1)).unwrap().finish().unwrap(),
        )
    };
    let whole = run(x.len());
    assert_eq!(run(1), whole);
    assert_eq!(run(100), whole);
    assert_eq!(whole.1.count, 2 * BLOCK_ROWS + 9);
}

#[test]
fn folded_moments_of_partitions_merge_into_the_whole() {
    let d = 3;
    let x: Vec<f64> = data(4 * BLOCK_ROWS + 30, d, 2.0, 15);
    let n = x.len() / d;
    let mut whole = FoldedMoments::new(&[2.0; 3], 5).unwrap();
    whole.add(rows(&x, d)).unwrap();
    for cut in [BLOCK_ROWS, 2 * BLOCK_ROWS + 17] {
        let mut first = FoldedMoments::new(&[2.0; 3], 5).unwrap();
        first.add(rows(&x[..cut * d], d)).unwrap();
        let mut later = FoldedMoments::starting_at(&[2.0; 3], 5, cut).unwrap();
        later.add(rows(&x[cut * d..], d)).unwrap();
        assert_eq!((later.count(), later.next_row()), (n - cut, n));
        first.merge(&later).unwrap();
        assert_eq!((first.count(), first.next_row()), (n, n));
        for left_out in [None, Some(0), Some(3)] {
            let got = first.combined(left_out).unwrap().finish().unwrap();
            let want = whole.combined(left_out).unwrap().finish().unwrap();
            assert_eq!(got.count, want.count);
            assert!(close(&got.covariance, &want.covariance, 1e-12));
        }
        // rows out of order or another fold count are refused by name
        let stray = FoldedMoments::starting_at(&[2.0; 3], 5, cut + 1).unwrap();
        assert!(matches!(
            first.clone().merge(&stray),
            Err(GioError::InvalidArgument { .. })
        ));
    }
}

/// Bits of every result above on one data set, printed by the child processes.
fn fingerprint() -> String {
    let (n, d) = (3 * BLOCK_ROWS + 5, 24);
    let pool: Vec<f32> = data(n, d, 10.0, 21);
    let target: Vec<f32> = data(30, d, 10.1, 22);
    let mut bits: Vec<u64> = Vec::new();
    let m = moments_of(&pool, d, &[100]);
    bits.extend(m.mean.iter().chain(&m.covariance).map(|v| v.to_bits()));
    let fit = fit_gaussian(rows(&pool, d), rows(&target, d), &ALPHA_GRID, 5, 1).unwrap();
    bits.extend(fit.direction.w.iter().map(|v| v.to_bits()));
    bits.push(fit.calibration.offset.to_bits());
    let s = linear_scores(rows(&pool, d), &fit.direction.w, fit.direction.bias);
    bits.extend(s.iter().map(|v| v.to_bits()));
    let reference = KnnReference {
        target: rows(&target, d),
        background: rows(&pool[..200 * d], d),
    };
    let c = knn_target_counts(rows(&pool, d), &reference, 10, None).unwrap();
    bits.extend(c.iter().map(|&v| v as u64));
    let l = fit_logistic(
        rows(&target, d),
        rows(&pool, d),
        None,
        LogisticOptions::default(),
    )
    .unwrap();
    bits.extend(l.w.iter().map(|v| v.to_bits()));
    let mut h = SplitMix64::new(0).next_u64();
    for b in bits {
        h = SplitMix64::new(h ^ b).next_u64();
    }
    format!("{h:016x}")
}

#[test]
fn the_same_bits_for_any_thread_count_and_fused_simd_level() {
    if std::env::var_os("GIO_RS_RATIO_CHILD").is_some() {
        println!("FINGERPRINT {}", fingerprint());
        return;
    }
    let child = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "the_same_bits_for_any_thread_count_and_fused_simd_level",
            "--nocapture",
        ])
        .env("GIO_RS_RATIO_CHILD", "1")
        .env_remove("GIO_RS_NO_AVX512");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with("FINGERPRINT"))
            .map(str::to_string);
        line.unwrap_or_else(|| panic!("child printed no fingerprint: {text}"))
    };
    let here = format!("FINGERPRINT {}", fingerprint());
    if std::env::var_os("GIO_RS_NO_SIMD").is_some() {
        // The scalar level: only thread counts must agree.
        assert_eq!(child(&[("RAYON_NUM_THREADS", "1")]), here);
        return;
    }
    assert_eq!(child(&[("RAYON_NUM_THREADS", "1")]), here);
    assert_eq!(child(&[("RAYON_NUM_THREADS", "3")]), here);
    assert_eq!(
        child(&[("GIO_RS_NO_AVX512", "1"), ("RAYON_NUM_THREADS", "2")]),
        here
    );
}

#[test]
fn out_of_fold_pool_scores_do_not_depend_on_the_batching() {
    use gio_rs::ratio::gaussian::{fold_directions, pool_oof_scores};
    let d = 6;
    let pool: Vec<f32> = data(3 * BLOCK_ROWS + 50, d, 1.0, 30);
    let target: Vec<f32> = data(20, d, 1.2, 31);
    let mut folded = FoldedMoments::new(&[1.0; 6], 3).unwrap();
    folded.add(rows(&pool, d)).unwrap();
    let t_folds = target_folds(20, 3, 0);
    let dirs = fold_directions(&folded, rows(&target, d), &t_folds, &[0.1, 1.0]).unwrap();
    let whole = pool_oof_scores(rows(&pool, d), 0, &dirs);
    let cut = BLOCK_ROWS + 77;
    let mut parts = pool_oof_scores(rows(&pool[..cut * d], d), 0, &dirs);
    let rest = pool_oof_scores(rows(&pool[cut * d..], d), cut, &dirs);
    for (p, r) in parts.iter_mut().zip(rest) {
        p.extend(r);
    }
    assert_eq!(parts, whole);
    // Each row by its own fold's direction.
    let i = 2 * BLOCK_ROWS + 3; // block 2: fold 2
    let dir = &dirs[2][1];
    let want: f64 = dir.bias
        + (0..d)
            .map(|j| pool[i * d + j] as f64 * dir.w[j])
            .sum::<f64>();
    assert!((whole[1][i] - want).abs() < 1e-12);
}

#[test]
fn knn_log_ratio_and_calibration_follow_the_reference_formulas() {
    use gio_rs::ratio::calibrate::calibrate;
    use gio_rs::ratio::knn::knn_log_ratio;
    let s = knn_log_ratio(&[0, 5, 10], 10, 4, 100, 0.5);
    let want = |c: f64| ((c + 0.5) / 4.0).ln() - ((10.0 - c + 0.5) / 100.0).ln();
    assert_eq!(s, vec![want(0.0), want(5.0), want(10.0)]);
    // Separated scores calibrate with a positive slope and a large gain; identical ones gain nothing.
    let t: Vec<f64> = (0..50).map(|i| 2.0 + (i as f64 * 0.7).sin()).collect();
    let p: Vec<f64> = (0..200).map(|i| (i as f64 * 0.3).cos()).collect();
    let c = calibrate(&t, &p).unwrap();
    assert!(c.scale > 0.0 && c.gain > 0.3, "{c:?}");
    let same = calibrate(&p[..50], &p).unwrap();
    assert!(same.gain < 0.02, "{same:?}");
}

#[test]
fn calibration_matches_the_general_logistic_fit_in_one_dimension() {
    use gio_rs::ratio::calibrate::calibrate;
    let t: Vec<f64> = (0..70).map(|i| 0.8 + (i as f64 * 0.37).sin()).collect();
    let p: Vec<f64> = (0..500).map(|i| (i as f64 * 0.13).cos() * 1.5).collect();
    let c = calibrate(&t, &p).unwrap();
    let mut weights = vec![0.5 / 70.0; 70];
    weights.resize(570, 0.5 / 500.0);
    let opts = LogisticOptions {
        l2: 0.0,
        ..LogisticOptions::default()
    };
    let fit = fit_logistic(rows(&t, 1), rows(&p, 1), Some(&weights), opts).unwrap();
    assert!(
        (c.scale - fit.w[0]).abs() < 1e-6 && (c.offset - fit.bias).abs() < 1e-6,
        "{c:?} {fit:?}"
    );
    assert!((c.gain - (std::f64::consts::LN_2 - fit.loss)).abs() < 1e-10);
}

mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any shape, offset and batching: the same bits as one batch, close to the naive loops.
        #[test]
        fn moments_any_batching(
            n in 1usize..700,
            d in 1usize..12,
            offset in prop_oneof![Just(0.0), -1e4..1e4f64],
            cuts in vec(1usize..300, 1..6),
            seed in any::<u64>(),
        ) {
            let x: Vec<f64> = data(n, d, offset, seed);
            let whole = moments_of(&x, d, &[n]);
            prop_assert_eq!(&moments_of(&x, d, &cuts), &whole);
            let (mean, cov) = naive_moments(&x, d);
            prop_assert!(close(&whole.mean, &mean, 1e-12));
            prop_assert!(close(&whole.covariance, &cov, 1e-8));
        }

        /// Top-B of any keys in any two partitions equals a stable sort's first B.
        #[test]
        fn top_b_any_partition(
            keys in vec(prop_oneof![Just(1.0), Just(2.0), -5.0..5.0f64], 1..200),
            b in 1usize..50,
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(keys.len());
            let (mut a, mut rest) = (TopB::new(b), TopB::new(b));
            a.push(&keys[..cut], 0);
            rest.push(&keys[cut..], cut);
            a.merge(&rest);
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by(|&i, &j| keys[j].total_cmp(&keys[i]).then(i.cmp(&j)));
            order.truncate(b);
            prop_assert_eq!(a.finish().0, order);
        }

        /// k-NN counts of any shape, values (coarse grids with ties and duplicates, or
        /// continuous), offset, k and self rows: those of the brute force.
        #[test]
        fn knn_counts_any_shape(
            nt in 1usize..40,
            nb in 0usize..90,
            nq in 1usize..150,
            d in 1usize..24,
            grid in any::<bool>(),
            offset in prop_oneof![Just(0.0), Just(1e4), Just(-3e3), Just(1e15)],
            k_at in any::<prop::sample::Index>(),
            seed in any::<u64>(),
        ) {
            prop_assume!(nt + nb >= 2);
            let mut rng = SplitMix64::new(seed);
            let mut value = || if grid { rng.below(3) as f64 + offset } else { rng.next_f64() + offset };
            let reference: Vec<f64> = (0..(nt + nb) * d).map(|_| value()).collect();
            let mut queries: Vec<f64> = (0..nq * d).map(|_| value()).collect();
            // Some queries are reference rows scored leave-self-out.
            let own: Vec<i64> = (0..nq)
                .map(|i| if i % 3 == 0 { (i * 7 % (nt + nb)) as i64 } else { -1 })
                .collect();
            for (i, &j) in own.iter().enumerate() {
                if j >= 0 {
                    let j = j as usize;
                    queries[i * d..(i + 1) * d].copy_from_slice(&reference[j * d..(j + 1) * d]);
                }
            }
            let k = 1 + k_at.index(nt + nb - 1);
            let refs = KnnReference {
                target: rows(&reference[..nt * d], d),
                background: rows(&reference[nt * d..], d),
            };
            let got = knn_target_counts(rows(&queries, d), &refs, k, Some(&own)).unwrap();
            prop_assert_eq!(got, brute_counts_sq_dist(&queries, &reference, nt, d, k, &own));
        }
    }
}
