//! Descents follow the reference's step rule, and descents of several points at once equal
//! descents of each point alone, bit for bit: the selection loop relies on it to run upcoming
//! descents together.

use gio_rs::descent::{descend, descend_from, descend_many, DescentWork};
use gio_rs::kl::{kl_gradient, KlParams, KlState};
use gio_rs::Rows;

fn matrix(n: usize, d: usize, seed: f64) -> Vec<f32> {
    (0..n * d)
        .map(|i| ((i as f64 * 0.7548 + seed).sin() * 2.0) as f32)
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

#[test]
fn descent_follows_the_reference_step_rule() {
    // v ← v − lr·scale·∇KL(v), with the automatic scale ‖v₀‖ / ‖∇KL(v₀)‖ (docs/reference.md),
    // written out here from kl_gradient, which core_kl checks against finite differences.
    let (n, m, d, lr, steps) = (30usize, 6usize, 4usize, 0.01, 3usize);
    let x: Vec<f64> = matrix(n, d, 0.2).iter().map(|&a| a as f64).collect();
    let w: Vec<f64> = matrix(m, d, 1.3).iter().map(|&a| a as f64 + 0.5).collect();
    let (xr, wr) = (
        Rows::new("x", &x, d).unwrap(),
        Rows::new("w", &w, d).unwrap(),
    );
    for discard in [false, true] {
        let v0: Vec<f64> = (0..d).map(|j| 0.3 - 0.2 * j as f64).collect();
        let gradient = |v: &[f64]| kl_gradient(xr, wr, v, discard).unwrap();
        let want_scale = norm(&v0) / norm(&gradient(&v0));
        let mut want = v0.clone();
        for _ in 0..steps {
            let g = gradient(&want);
            for (vj, gj) in want.iter_mut().zip(&g) {
                *vj -= lr * want_scale * gj;
            }
        }
        let run = |scale: Option<f64>, steps: usize| {
            descend_from(
                xr,
                wr,
                v0.clone(),
                scale,
                steps,
                lr,
                discard,
                &mut || Ok(()),
            )
            .unwrap()
        };
        let (got, scale) = run(None, steps);
        assert!(
            (scale - want_scale).abs() <= 1e-12 * want_scale,
            "{scale} vs {want_scale}"
        );
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
        // A given scale factor is used as it is, and zero steps leave v alone.
        assert_eq!(run(Some(2.5), 0), (v0.clone(), 2.5));
        let (one, _) = run(Some(2.5), 1);
        let g = gradient(&v0);
        for j in 0..d {
            let expected = v0[j] - lr * 2.5 * g[j];
            assert!((one[j] - expected).abs() <= 1e-12 * expected.abs().max(1.0));
        }
    }
}

#[test]
fn batched_descents_equal_single_descents() {
    // Several chunk counts and block shapes: d not a multiple of 16, n over a chunk; 19 points,
    // more than the 16 one pass over X takes.
    let sizes: Vec<usize> = (0..19).map(|b| 4 + b % 9).collect();
    for &(n, d) in &[(50usize, 3usize), (700, 37), (1200, 64)] {
        let x = matrix(n, d, 0.1);
        let w = matrix(12, d, 0.9);
        let xr = Rows::new("x", &x, d).unwrap();
        let mean = xr.column_means();
        let mut batch: Vec<f64> = sizes.iter().flat_map(|_| mean.clone()).collect();
        let state = KlState::without_target_term(
            xr,
            Rows::new("w", &w[..d], d).unwrap(),
            KlParams::new(1, false),
        )
        .unwrap();
        let mut work = DescentWork::default();
        descend_many(
            &state,
            &mut batch,
            &sizes,
            3.0,
            0.01,
            7,
            &mut work,
            &mut || Ok(()),
        )
        .unwrap();
        for (b, &m) in sizes.iter().enumerate() {
            let single_state = KlState::without_target_term(
                xr,
                Rows::new("w", &w[..m * d], d).unwrap(),
                KlParams::new(1, false),
            )
            .unwrap();
            let mut v = mean.clone();
            descend(
                &single_state,
                &mut v,
                3.0,
                0.01,
                7,
                &mut DescentWork::default(),
                &mut || Ok(()),
            )
            .unwrap();
            assert_eq!(v, batch[b * d..(b + 1) * d], "n={n} d={d} size={m}");
        }
    }
}

#[test]
fn descent_stops_when_the_host_says_so() {
    let x = matrix(30, 4, 0.0);
    let xr = Rows::new("x", &x, 4).unwrap();
    let state = KlState::without_target_term(
        xr,
        Rows::new("w", &x[..8], 4).unwrap(),
        KlParams::new(1, false),
    )
    .unwrap();
    let mut v = xr.column_means();
    let mut calls = 0;
    let result = descend(
        &state,
        &mut v,
        1.0,
        0.01,
        100,
        &mut DescentWork::default(),
        &mut || {
            calls += 1;
            if calls == 3 {
                Err(gio_rs::GioError::Aborted)
            } else {
                Ok(())
            }
        },
    );
    assert_eq!(result, Err(gio_rs::GioError::Aborted));
    assert_eq!(calls, 3);
}

#[test]
fn batched_gradients_equal_single_ones_near_target_rows_too() {
    use gio_rs::kl::GradientWork;
    let (n, d) = (900usize, 40usize);
    let x = matrix(n, d, 0.3);
    let w = matrix(7, d, 0.8);
    let xr = Rows::new("x", &x, d).unwrap();
    for discard in [false, true] {
        let state = KlState::without_target_term(
            xr,
            Rows::new("w", &w, d).unwrap(),
            KlParams::new(1, discard),
        )
        .unwrap();
        // On a row, within 1e-4 of one, at the mean, far away: near and far rows, clipped terms.
        let mut points: Vec<f64> = x[..d].iter().map(|&a| a as f64).collect();
        points.extend(x[5 * d..6 * d].iter().map(|&a| a as f64 + 1e-4));
        points.extend(xr.column_means());
        points.extend((0..d).map(|j| 50.0 + j as f64));
        let mut batch = vec![0.0; points.len()];
        gradient_sums(&state, &points, &mut batch);
        for (b, v) in points.chunks_exact(d).enumerate() {
            let mut single = vec![0.0; d];
            gradient_sums(&state, v, &mut single);
            assert_eq!(
                single,
                batch[b * d..(b + 1) * d],
                "discard={discard} point {b}"
            );
        }
    }

    fn gradient_sums(state: &KlState<'_, f32>, vs: &[f64], out: &mut [f64]) {
        state.gradient_sums(vs, &mut GradientWork::default(), out);
    }
}
