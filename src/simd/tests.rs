//! Every kernel at every level this CPU runs, plus the fused portable code that aarch64 runs as
//! its `neon` level: the fused levels must agree to the bit, the scalar level within roundoff,
//! and each against a plain f64 computation.

use super::*;

/// The portable code with fused multiply-adds (what aarch64 runs as `neon`), runnable anywhere
/// (here each fused multiply-add may be a libm call: slow, but the same bits).
#[derive(Clone, Copy, Debug)]
struct FusedPortable;

impl Runner for FusedPortable {
    fn go<K: Kernel>(self, kernel: K) -> K::Output {
        kernel.run(Portable::<true>)
    }
}

/// A runner of either kind, so tests can loop over both.
#[derive(Clone, Copy, Debug)]
enum Either {
    Level(Level),
    Fused(FusedPortable),
}

impl Runner for Either {
    fn go<K: Kernel>(self, kernel: K) -> K::Output {
        match self {
            Either::Level(l) => l.go(kernel),
            Either::Fused(f) => f.go(kernel),
        }
    }
}

fn runners() -> Vec<Either> {
    let mut out = vec![Either::Fused(FusedPortable)];
    out.extend(supported_levels().into_iter().map(Either::Level));
    out
}

fn is_fused(r: Either) -> bool {
    !matches!(r, Either::Level(Level::Scalar))
}

fn data64(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * 0.37 + seed).sin() * 3.0)
        .collect()
}

fn data32(n: usize, seed: f64) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f64 * 0.11 + seed).cos() * 3.0) as f32)
        .collect()
}

const DIMS: [usize; 13] = [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 771];

#[test]
fn the_level_in_use_is_supported_and_named() {
    assert!(level().is_supported());
    assert!(supported_levels().contains(&level()));
    assert!(["avx512", "avx2", "neon", "scalar"].contains(&level_name()));
    assert!(supported_levels().contains(&Level::Scalar));
}

#[test]
fn reductions_agree_across_levels() {
    for d in DIMS {
        let (a, b) = (data64(d, d as f64), data32(d, d as f64));
        let b64: Vec<f64> = b.iter().map(|&x| x as f64).collect();
        let naive_sq: f64 = a.iter().zip(&b64).map(|(x, y)| (x - y) * (x - y)).sum();
        let naive_dot: f64 = a.iter().zip(&b64).map(|(x, y)| x * y).sum();
        let mut fused: Option<(u64, u64, u64, Vec<f64>)> = None;
        for r in runners() {
            let sq = r.go(SqDist { a: &a, b: &b });
            let sq_mixed = r.go(SqDist { a: &b, b: &a });
            let sq64 = r.go(SqDist { a: &a, b: &b64 });
            assert_eq!(
                sq.to_bits(),
                sq64.to_bits(),
                "{r:?} d={d}: f32 widened exactly"
            );
            assert_eq!(sq.to_bits(), sq_mixed.to_bits(), "{r:?} d={d}: symmetric");
            let dt = r.go(Dot { a: &a, b: &b });
            let mut acc = data64(d, 0.5);
            r.go(ScaledDifference {
                acc: &mut acc,
                c: 0.3,
                v: &a,
                x: &b,
            });
            assert!((sq - naive_sq).abs() <= 1e-12 * naive_sq, "{r:?} d={d}");
            assert!(
                (dt - naive_dot).abs() <= 1e-12 * (1.0 + naive_sq),
                "{r:?} d={d}"
            );
            if is_fused(r) {
                let this = (sq.to_bits(), dt.to_bits(), sq64.to_bits(), acc);
                match &fused {
                    None => fused = Some(this),
                    Some(first) => assert_eq!(first, &this, "{r:?} d={d}: fused levels differ"),
                }
            }
        }
    }
}

#[test]
fn dot_block_equals_single_dots_at_every_level() {
    for (na, nb, d) in [
        (1usize, 1usize, 1usize),
        (5, 7, 8),
        (9, 4, 13),
        (8, 12, 64),
        (6, 5, 771),
        (16, 1, 100),
        (12, 3, 33),
        (3, 20, 768),
    ] {
        let a = data32(na * d, 0.0);
        let b = data64(nb * d, 1.0);
        let mut fused: Option<Vec<f64>> = None;
        for r in runners() {
            let mut out = vec![0.0; na * nb];
            r.go(DotBlock {
                a: &a,
                b: &b,
                dim: d,
                out: &mut out,
            });
            for i in 0..na {
                for c in 0..nb {
                    let single = r.go(Dot {
                        a: &a[i * d..(i + 1) * d],
                        b: &b[c * d..(c + 1) * d],
                    });
                    assert_eq!(
                        out[i * nb + c].to_bits(),
                        single.to_bits(),
                        "{r:?} {na}x{nb} d={d}"
                    );
                }
            }
            if is_fused(r) {
                match &fused {
                    None => fused = Some(out),
                    Some(first) => assert_eq!(first, &out, "{r:?}: fused levels differ"),
                }
            }
        }
    }
}

#[test]
fn weighted_rows_follow_the_row_order_at_every_level() {
    for (rows_n, points, d) in [
        (1usize, 1usize, 3usize),
        (5, 3, 40),
        (7, 8, 771),
        (3, 2, 64),
        (9, 5, 17),
        (8, 16, 768),
    ] {
        let rows = data32(rows_n * d, 0.0);
        let coefs = data64(rows_n * points, 2.0);
        let start = data64(points * d, 3.0);
        for r in runners() {
            // The definition, one element at a time, in row order.
            let mut expected = start.clone();
            for (i, row) in rows.chunks_exact(d).enumerate() {
                for p in 0..points {
                    let c = coefs[i * points + p];
                    for (e, &x) in expected[p * d..(p + 1) * d].iter_mut().zip(row) {
                        *e = if is_fused(r) {
                            c.mul_add(x as f64, *e)
                        } else {
                            c * x as f64 + *e
                        };
                    }
                }
            }
            let mut got = start.clone();
            r.go(WeightedRows {
                acc: &mut got,
                coefs: &coefs,
                rows: &rows,
                dim: d,
            });
            assert_eq!(got, expected, "{r:?} {rows_n}x{points} d={d}");
        }
    }
}

#[test]
fn sq_dists_and_nearest_unused_match_single_pairs() {
    let d = 37;
    let rows = data32(50 * d, 0.0);
    let v = data64(d, 9.0);
    let mut used = vec![false; 50];
    for r in runners() {
        let mut out = vec![0.0; 50];
        r.go(SqDists {
            v: &v,
            rows: &rows,
            dim: d,
            out: &mut out,
        });
        for (i, &o) in out.iter().enumerate() {
            let single = r.go(SqDist {
                a: &v,
                b: &rows[i * d..(i + 1) * d],
            });
            assert_eq!(o.to_bits(), single.to_bits());
        }
        let best = (0..50)
            .filter(|&i| !used[i])
            .min_by(|&a, &b| out[a].total_cmp(&out[b]).then(a.cmp(&b)))
            .unwrap();
        let got = r.go(NearestUnused {
            v: &v,
            rows: &rows,
            dim: d,
            used: &used,
        });
        assert_eq!(got, Some((best, out[best])), "{r:?}");
        used[best] = true;
    }
    let all_used = vec![true; 50];
    assert_eq!(nearest_unused(&v, &rows, d, &all_used), None);
}

/// Labels, best scores, runner-up scores and every score of a center-kernel run.
type CenterResults = (Vec<u32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// ‖c‖² − 2 x·c in float64 for each of the `k` centers (rounded to float32 as the kernels take them).
fn exact_center_scores(row: &[f32], centers: &[f64], k: usize, d: usize) -> Vec<f64> {
    (0..k)
        .map(|c| {
            let cv = &centers[c * d..(c + 1) * d];
            let norm: f64 = cv.iter().map(|&v| (v as f32 as f64).powi(2)).sum();
            let dot: f64 = row
                .iter()
                .zip(cv)
                .map(|(&a, &b)| a as f64 * (b as f32) as f64)
                .sum();
            norm - 2.0 * dot
        })
        .collect()
}

/// `center_scores_at` from a later panel on: the same bits there as `all` (from the first
/// center), the columns before it untouched.
fn check_scores_from_later_panel(r: Either, x: &[f64], packed: &PackedCenters, all: &[f32]) {
    let padded = packed.padded;
    let first = (padded / 2 / 16) * 16;
    let mut part = vec![-1.0f32; all.len()];
    center_scores_at(r, x, packed, first, &mut part);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (got, want) in part.chunks_exact(padded).zip(all.chunks_exact(padded)) {
        assert!(
            got[..first].iter().all(|&v| v == -1.0),
            "{r:?} before first"
        );
        assert_eq!(
            bits(&got[first..]),
            bits(&want[first..]),
            "{r:?} from first"
        );
    }
}

#[test]
fn center_kernels_agree_with_float64_and_across_levels() {
    // Shapes off every tile size, for f32 and f64 rows: the chosen center's score is the
    // smallest (within float32 roundoff of the f64 scores), `second` is the next one, ties go
    // to the lowest index, and the fused levels agree to the bit.
    for (n, k, d) in [
        (1usize, 1usize, 1usize),
        (13, 5, 7),
        (37, 33, 19),
        (50, 70, 64),
        (9, 48, 5),
    ] {
        let x = data64(n * d, 0.0);
        let mut centers = data64(k * d, 5.0);
        if k > 3 {
            // A duplicated center: equal scores, the lower index must win.
            let copy = centers[..d].to_vec();
            centers[3 * d..4 * d].copy_from_slice(&copy);
        }
        let packed = PackedCenters::new(&centers, d);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut fused: Option<CenterResults> = None;
        for r in runners() {
            let run = |rows: &[f64]| {
                let (mut b, mut s, mut t) = (vec![0u32; n], vec![0.0f32; n], vec![0.0f32; n]);
                nearest_centers_at(r, rows, &packed, &mut b, &mut s, &mut t);
                let rows32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
                let (mut b2, mut s2, mut t2) = (vec![0u32; n], vec![0.0f32; n], vec![0.0f32; n]);
                nearest_centers_at(r, &rows32, &packed, &mut b2, &mut s2, &mut t2);
                // f64 rows are rounded to f32 first: the same answer as the f32 rows.
                assert_eq!((&b, &s, &t), (&b2, &s2, &t2), "{r:?}");
                (b, s, t)
            };
            let (best, score, second) = run(&x);
            let mut all = vec![0.0f32; n * packed.padded];
            center_scores_at(r, &x, &packed, 0, &mut all);
            check_scores_from_later_panel(r, &x, &packed, &all);
            for i in 0..n {
                let row = &x32[i * d..(i + 1) * d];
                let exact = exact_center_scores(row, &centers, k, d);
                let tol = 1e-4 * (1.0 + exact.iter().fold(0.0f64, |m, v| m.max(v.abs())));
                let min = exact.iter().copied().fold(f64::INFINITY, f64::min);
                let label = best[i] as usize;
                let row_scores = &all[i * packed.padded..(i + 1) * packed.padded];
                for (c, &v) in row_scores.iter().enumerate() {
                    if c < k {
                        assert!((v as f64 - exact[c]).abs() <= tol, "{r:?} score");
                    } else {
                        assert_eq!(v, f32::INFINITY, "padding");
                    }
                }
                // The chosen score is the row's own score of that center.
                assert_eq!(score[i], row_scores[label], "{r:?}");
                assert!(exact[label] <= min + tol, "{r:?} ({n},{k},{d}) row {i}");
                if k > 3 {
                    assert_ne!(label, 3, "the duplicate of center 0 never wins");
                }
                let mut sorted = exact.clone();
                sorted.sort_by(f64::total_cmp);
                let expected_second = sorted.get(1).copied().unwrap_or(f64::INFINITY);
                if expected_second.is_finite() {
                    assert!((second[i] as f64 - expected_second).abs() <= tol);
                } else {
                    assert_eq!(second[i], f32::INFINITY);
                }
            }
            if is_fused(r) {
                let this = (best, score, second, all);
                match &fused {
                    None => fused = Some(this),
                    Some(first) => assert_eq!(first, &this, "{r:?}: fused levels differ"),
                }
            }
        }
    }
}

#[test]
fn panel_dots_are_one_chain_per_output_at_every_level() {
    for (n, points, d) in [
        (1usize, 1usize, 1usize),
        (8, 1, 9),
        (13, 3, 17),
        (40, 7, 64),
        (70, 12, 33),
        (9, 16, 768),
    ] {
        let x = data32(n * d, 0.0);
        let pts = data64(points * d, 4.0);
        let packed = kernels::pack_row_panels(&x, d);
        let rows_out = n.div_ceil(8) * 8;
        for r in runners() {
            let mut out = vec![f64::NAN; rows_out * points];
            r.go(PanelDots {
                panels: &packed,
                points: &pts,
                dim: d,
                out: &mut out,
            });
            for i in 0..rows_out {
                for p in 0..points {
                    let mut expected = 0.0f64;
                    for j in 0..d {
                        let xv = if i < n { x[i * d + j] as f64 } else { 0.0 };
                        let pv = pts[p * d + j];
                        expected = if is_fused(r) {
                            xv.mul_add(pv, expected)
                        } else {
                            xv * pv + expected
                        };
                    }
                    assert_eq!(
                        out[i * points + p].to_bits(),
                        expected.to_bits(),
                        "{r:?} n={n} points={points} d={d} ({i},{p})"
                    );
                }
            }
            // One point at a time gives the same values as all together.
            for p in 0..points {
                let mut one = vec![0.0; rows_out];
                r.go(PanelDots {
                    panels: &packed,
                    points: &pts[p * d..(p + 1) * d],
                    dim: d,
                    out: &mut one,
                });
                for i in 0..rows_out {
                    assert_eq!(one[i].to_bits(), out[i * points + p].to_bits());
                }
            }
        }
    }
}

/// `PanelDots` for `points` points against `n` rows at every level, each output checked against
/// one fused (or, at the scalar level, unfused) chain over the columns in order.
fn check_panel_dots(n: usize, points: usize, d: usize) {
    let x = data32(n * d, 1.0);
    let pts = data64(points * d, 2.0);
    let packed = kernels::pack_row_panels(&x, d);
    let rows_out = n.div_ceil(8) * 8;
    for r in runners() {
        let mut out = vec![f64::NAN; rows_out * points];
        r.go(PanelDots {
            panels: &packed,
            points: &pts,
            dim: d,
            out: &mut out,
        });
        for i in 0..rows_out {
            for p in 0..points {
                let expected = (0..d).fold(0.0f64, |acc, j| {
                    let xv = if i < n { x[i * d + j] as f64 } else { 0.0 };
                    if is_fused(r) {
                        xv.mul_add(pts[p * d + j], acc)
                    } else {
                        xv * pts[p * d + j] + acc
                    }
                });
                let got = out[i * points + p];
                assert_eq!(
                    got.to_bits(),
                    expected.to_bits(),
                    "{r:?} n={n} points={points} d={d} ({i},{p})"
                );
            }
        }
    }
}

#[test]
fn panel_dots_leftover_points_are_one_chain_per_output_at_every_level() {
    // Point counts past every level's tile width (5 on AVX2, 8 on AVX-512) by each leftover
    // count, and the KL cross term's blocks of 30 and 32, on panel counts off the 2-panel tile.
    for points in [2usize, 5, 6, 7, 9, 11, 13, 14, 15, 30, 32] {
        check_panel_dots(24, points, 19);
    }
    check_panel_dots(37, 30, 40);
}

/// Packs m rows (row-major, `d` columns) in `GRAM_PANEL`-column panels, zero-padded.
fn pack_gram_panels(rows: &[f64], m: usize, d: usize) -> Vec<f64> {
    let mut packed = vec![0.0; d.div_ceil(GRAM_PANEL) * GRAM_PANEL * m];
    for r in 0..m {
        for j in 0..d {
            packed[(j / GRAM_PANEL * m + r) * GRAM_PANEL + j % GRAM_PANEL] = rows[r * d + j];
        }
    }
    packed
}

#[test]
fn gram_rows_are_one_chain_per_value_at_every_level() {
    for (m, d) in [
        (1usize, 1usize),
        (5, 7),
        (3, 8),
        (17, 25),
        (2, 31),
        (9, 64),
        (4, 385),
    ] {
        let (left, right) = (data64(m * d, 1.0), data64(m * d, 4.0));
        let (pl, pr) = (
            pack_gram_panels(&left, m, d),
            pack_gram_panels(&right, m, d),
        );
        let padded = d.div_ceil(GRAM_PANEL) * GRAM_PANEL;
        // Every row range the moments pass may ask for: from 0, and from later panels.
        for i0 in (0..padded).step_by(GRAM_PANEL).take(3) {
            let i1 = (i0 + 2 * GRAM_PANEL).min(padded);
            let w = padded - i0;
            for r in runners() {
                let mut got = vec![0.0; (i1 - i0) * w];
                r.go(GramRows {
                    left: &pl,
                    right: &pr,
                    m,
                    rows: (i0, i1),
                    out: &mut got,
                });
                for i in i0..i1.min(d) {
                    for j in i / GRAM_PANEL * GRAM_PANEL..d {
                        // The definition: one chain over the rows in order.
                        let mut expected = 0.0f64;
                        for k in 0..m {
                            let (a, b) = (left[k * d + i], right[k * d + j]);
                            expected = if is_fused(r) {
                                a.mul_add(b, expected)
                            } else {
                                a * b + expected
                            };
                        }
                        let value = got[(i - i0) * w + j - i0];
                        assert_eq!(value, expected, "{r:?} m={m} d={d} ({i}, {j})");
                    }
                }
            }
        }
    }
}
