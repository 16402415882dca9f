//! K-Means: recovers separated blobs, assignment equals brute force, same result for any
//! thread count, empty clusters re-seeded, bad parameters are errors.

use gio_rs::distance::{row_norms, sq_dist};
use gio_rs::kmeans::{assign, kmeans, KMeansInit, KMeansParams};
use gio_rs::rng::SplitMix64;
use gio_rs::{Element, Rows};

fn blobs(per: usize, centers: &[[f64; 3]], seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for i in 0..per * centers.len() {
        let c = centers[i % centers.len()];
        for v in c {
            out.push((v + (rng.next_f64() - 0.5) * 0.2) as f32);
        }
    }
    out
}

fn params(k: usize) -> KMeansParams {
    KMeansParams {
        n_clusters: k,
        max_iter: 100,
        tol: 1e-4,
        n_init: 1,
        seed: 3,
        init: KMeansInit::KMeansPlusPlus,
        init_sample_size: 0,
    }
}

/// `assign` on every row of `x` against row-major `centers`: (labels, squared distances).
fn assign_all(x: Rows<'_, f32>, centers: &[f64]) -> (Vec<u32>, Vec<f64>) {
    let norms: Vec<f64> = (0..x.len())
        .map(|i| x.row(i).iter().map(|v| (*v as f64).powi(2)).sum())
        .collect();
    let mut labels = vec![0u32; x.len()];
    let mut dists = vec![0.0; x.len()];
    assign(
        x,
        &norms,
        Rows::new("c", centers, x.dim()).unwrap(),
        &mut labels,
        &mut dists,
    );
    (labels, dists)
}

const CENTERS: [[f64; 3]; 4] = [
    [0.0, 0.0, 0.0],
    [5.0, 0.0, 0.0],
    [0.0, 5.0, 0.0],
    [0.0, 0.0, 5.0],
];

#[test]
fn recovers_separated_blobs() {
    let data = blobs(200, &CENTERS, 1);
    let x = Rows::new("x", &data, 3).unwrap();
    let fit = kmeans(x, &params(4).check().unwrap(), &mut |_, _| Ok(())).unwrap();
    // Every blob maps to one cluster and the inertia is the within-blob scatter (≈ 800·3·0.2²/12).
    for blob in 0..4 {
        let label = fit.labels[blob];
        assert!((0..800)
            .filter(|i| i % 4 == blob)
            .all(|i| fit.labels[i] == label));
    }
    assert!(
        fit.inertia < 800.0 * 3.0 * 0.04 / 12.0 * 1.2,
        "{}",
        fit.inertia
    );
}

#[test]
fn assignment_equals_brute_force() {
    let data = blobs(150, &CENTERS, 2);
    let x = Rows::new("x", &data, 3).unwrap();
    let centers: Vec<f64> = (0..7 * 3)
        .map(|i| ((i as f64) * 0.77).sin() * 4.0)
        .collect();
    let (labels, dists) = assign_all(x, &centers);
    for i in 0..x.len() {
        let d: Vec<f64> = (0..7)
            .map(|c| {
                (0..3)
                    .map(|j| (x.row(i)[j] as f64 - centers[c * 3 + j]).powi(2))
                    .sum()
            })
            .collect();
        let best = (0..7).min_by(|&a, &b| d[a].total_cmp(&d[b])).unwrap();
        assert_eq!(labels[i] as usize, best, "row {i}");
        assert!((dists[i] - d[best]).abs() <= 1e-12 * d[best].max(1.0));
    }
}

/// The exact nearest center by `sq_dist` (ties to the lowest index): what `assign` must return.
fn exact_labels<T: Element>(x: Rows<'_, T>, centers: &[f64]) -> Vec<u32> {
    let k = centers.len() / x.dim();
    (0..x.len())
        .map(|i| {
            let d: Vec<f64> = (0..k)
                .map(|c| sq_dist(x.row(i), &centers[c * x.dim()..(c + 1) * x.dim()]))
                .collect();
            (0..k).fold(0, |b, c| if d[c] < d[b] { c } else { b }) as u32
        })
        .collect()
}

#[test]
fn assignment_is_exact_at_near_ties() {
    // Pairs of centers mirrored around a far-off point, rows on (or within float32's resolution
    // of) the plane between the nearest pair: the float32 and float64 Gram forms cannot tell the
    // pair apart, so the exact re-check must. Shapes off every tile and lane size.
    for d in [3usize, 17, 40, 129] {
        let k = 37;
        let mut rng = SplitMix64::new(d as u64);
        let base: Vec<f64> = (0..d).map(|j| 100.0 + j as f64).collect();
        let mut centers = Vec::new();
        for c in 0..k {
            // Centers 2p and 2p + 1 sit at base ± (p + 1) along axis p % d.
            let (axis, offset) = ((c / 2) % d, (c / 2 + 1) as f64);
            let sign = if c % 2 == 0 { 1.0 } else { -1.0 };
            centers.extend((0..d).map(|j| base[j] + if j == axis { sign * offset } else { 0.0 }));
        }
        let mut x64 = Vec::new();
        for i in 0..301 {
            // Along axis 0, exactly between centers 0 and 1, or off by less than float32 sees.
            let tiny = [0.0, 1e-9, -1e-9, 1e-6, -3e-12][i % 5];
            x64.extend((0..d).map(|j| {
                base[j]
                    + if j == 0 {
                        tiny
                    } else {
                        (rng.next_f64() - 0.5) * 1e-3
                    }
            }));
        }
        // Exact duplicates of two centers, and a duplicated center.
        x64.extend_from_slice(&centers[..d]);
        x64.extend_from_slice(&centers[5 * d..6 * d]);
        let mut dup = centers.clone();
        dup[3 * d..4 * d].copy_from_slice(&centers[2 * d..3 * d]);
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        for c in [&centers, &dup] {
            let r64 = Rows::new("x", &x64, d).unwrap();
            let r32 = Rows::new("x", &x32, d).unwrap();
            assert_eq!(assign_generic(r64, c).0, exact_labels(r64, c), "f64 d={d}");
            assert_eq!(assign_generic(r32, c).0, exact_labels(r32, c), "f32 d={d}");
        }
    }
}

/// `assign` for either float type, with norms from the crate's own kernel.
fn assign_generic<T: Element>(x: Rows<'_, T>, centers: &[f64]) -> (Vec<u32>, Vec<f64>) {
    let norms = row_norms(x);
    let mut labels = vec![0u32; x.len()];
    let mut dists = vec![0.0; x.len()];
    assign(
        x,
        &norms,
        Rows::new("c", centers, x.dim()).unwrap(),
        &mut labels,
        &mut dists,
    );
    (labels, dists)
}

#[test]
fn same_result_for_any_thread_count() {
    let data = blobs(3000, &CENTERS, 4);
    let x = Rows::new("x", &data, 3).unwrap();
    let p = KMeansParams {
        n_init: 2,
        ..params(9)
    };
    let fits: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| kmeans(x, &p.clone().check().unwrap(), &mut |_, _| Ok(())).unwrap())
        })
        .collect();
    assert_eq!(fits[0], fits[1]);
    assert_eq!(fits[0], fits[2]);
}

#[test]
fn empty_clusters_are_reseeded() {
    // Two far centers start on the same side: one gets no rows and must move.
    let data = blobs(100, &CENTERS[..2], 5);
    let x = Rows::new("x", &data, 3).unwrap();
    let start = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 100.0, 100.0, 100.0];
    let p = KMeansParams {
        init: KMeansInit::Centers {
            values: start,
            dim: 3,
        },
        ..params(3)
    };
    let fit = kmeans(x, &p.check().unwrap(), &mut |_, _| Ok(())).unwrap();
    let mut used = [false; 3];
    fit.labels.iter().for_each(|&l| used[l as usize] = true);
    assert!(used.iter().all(|&u| u), "every cluster ends up with rows");
}

#[test]
fn bad_parameters_are_errors() {
    let data = blobs(2, &CENTERS, 6);
    let x = Rows::new("x", &data, 3).unwrap();
    for (p, name) in [
        (params(0), "n_clusters"),
        (params(9), "n_clusters"),
        (
            KMeansParams {
                n_init: 0,
                ..params(2)
            },
            "n_init",
        ),
        (
            KMeansParams {
                tol: f64::NAN,
                ..params(2)
            },
            "tol",
        ),
        (
            KMeansParams {
                init: KMeansInit::Centers {
                    values: vec![0.0; 5],
                    dim: 3,
                },
                ..params(2)
            },
            "init",
        ),
    ] {
        let err = p
            .check()
            .and_then(|p| kmeans(x, &p, &mut |_, _| Ok(())))
            .unwrap_err();
        assert!(err.to_string().starts_with(name), "{err}");
    }
}

#[test]
fn duplicate_centers_resolve_to_the_lowest_index_and_odd_sizes_work() {
    // 13 rows (not a multiple of the 8-row tile), 37 centers (not a multiple of 32), two equal.
    let data = blobs(13, &CENTERS[..1], 7);
    let x = Rows::new("x", &data, 3).unwrap();
    let mut centers: Vec<f64> = (0..37 * 3)
        .map(|i| 10.0 + (i as f64 * 0.91).sin())
        .collect();
    centers[4 * 3..5 * 3].copy_from_slice(&[0.0, 0.0, 0.0]);
    centers[30 * 3..31 * 3].copy_from_slice(&[0.0, 0.0, 0.0]);
    let (labels, _) = assign_all(x, &centers);
    assert!(labels.iter().all(|&l| l == 4), "{labels:?}");
}

#[test]
fn bounded_reassignment_gives_the_labels_of_a_full_assignment() {
    // Hamerly's bounds skip most rows after the first iterations: the final labels must still
    // be every row's nearest center. Overlapping blobs so that many rows sit near boundaries.
    let mut rng = SplitMix64::new(11);
    let data: Vec<f32> = (0..4000 * 5)
        .map(|_| (rng.next_f64() * 10.0) as f32)
        .collect();
    let x = Rows::new("x", &data, 5).unwrap();
    for max_iter in [2, 5, 50] {
        let fit = kmeans(
            x,
            &KMeansParams {
                max_iter,
                ..params(25)
            }
            .check()
            .unwrap(),
            &mut |_, _| Ok(()),
        )
        .unwrap();
        let (labels, dists) = assign_all(x, &fit.centers);
        assert_eq!(labels, fit.labels, "max_iter={max_iter}");
        assert!((dists.iter().sum::<f64>() - fit.inertia).abs() <= 1e-9 * fit.inertia);
    }
    let wide: Vec<f64> = data.iter().map(|&v| v as f64).collect();
    let x64 = Rows::new("x", &wide, 5).unwrap();
    let fit = kmeans(x64, &params(25).check().unwrap(), &mut |_, _| Ok(())).unwrap();
    let norms: Vec<f64> = (0..x64.len())
        .map(|i| x64.row(i).iter().map(|v| v * v).sum())
        .collect();
    let mut labels = vec![0u32; x64.len()];
    let mut dists = vec![0.0; x64.len()];
    assign(
        x64,
        &norms,
        Rows::new("c", &fit.centers, 5).unwrap(),
        &mut labels,
        &mut dists,
    );
    assert_eq!(labels, fit.labels);
}
