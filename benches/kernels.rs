//! Criterion benches of the hot kernels, each at a shape the Python benchmarks use (or a smaller
//! one with the same per-element cost). Run with `cargo bench --bench kernels` (optionally a
//! filter: `cargo bench --bench kernels -- assign`). Throughputs are in elements (values read)
//! or, for the Gram-style kernels, in multiply-adds, so GFLOP/s = 2 × the reported Gelem/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gio_rs::descent::{descend, DescentWork};
use gio_rs::distance::{kth_neighbour_sq, nearest_unused, row_norms};
use gio_rs::kl::{Candidate, GradientWork, KlParams, KlState};
use gio_rs::kmeans::{assign, kmeans, KMeansInit, KMeansParams};
use gio_rs::rng::SplitMix64;
use gio_rs::simd::{dot, dot_block, sq_dist};
use gio_rs::{Element, Rows};

/// `n × d` standard-ish normal values (sum of uniforms), shifted by `shift`.
fn data<T: Element>(n: usize, d: usize, shift: f64, seed: u64) -> Vec<T> {
    let mut rng = SplitMix64::new(seed);
    (0..n * d)
        .map(|_| {
            let s: f64 = (0..4).map(|_| rng.next_f64()).sum::<f64>() - 2.0;
            T::from_f64(s * 1.7 + shift)
        })
        .collect()
}

fn rows<T: Element>(values: &[T], d: usize) -> Rows<'_, T> {
    Rows::new("x", values, d).expect("whole rows")
}

fn vector_kernels(c: &mut Criterion) {
    let d = 768;
    let a32: Vec<f32> = data(1, d, 0.0, 1);
    let b32: Vec<f32> = data(1, d, 0.3, 2);
    let a64: Vec<f64> = data(1, d, 0.0, 1);
    let mut g = c.benchmark_group("vector");
    g.throughput(Throughput::Elements(d as u64));
    g.bench_function("sq_dist f64-f32 d=768", |b| {
        b.iter(|| sq_dist(black_box(&a64[..]), black_box(&b32[..])))
    });
    g.bench_function("sq_dist f32-f32 d=768", |b| {
        b.iter(|| sq_dist(black_box(&a32[..]), black_box(&b32[..])))
    });
    g.bench_function("dot f32-f32 d=768", |b| {
        b.iter(|| dot(black_box(&a32[..]), black_box(&b32[..])))
    });
    g.finish();
}

fn gram_tiles(c: &mut Criterion) {
    // The k-th neighbour search's inner step: 16 target rows against 1500 rows, d = 768.
    let (na, nb, d) = (16, 1500, 768);
    let a: Vec<f32> = data(na, d, 0.0, 3);
    let bm: Vec<f32> = data(nb, d, 0.0, 4);
    let mut out = vec![0.0f64; na * nb];
    let mut g = c.benchmark_group("gram");
    g.throughput(Throughput::Elements((na * nb * d) as u64));
    g.bench_function("dot_block f32 16x1500 d=768", |b| {
        b.iter(|| dot_block(black_box(&a[..]), black_box(&bm[..]), d, &mut out))
    });
    g.finish();
}

fn kth_neighbour(c: &mut Criterion) {
    let (n, d) = (1500, 768);
    let x: Vec<f32> = data(n, d, 0.0, 5);
    let mut g = c.benchmark_group("kth_neighbour");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements((n * n * d) as u64));
    g.bench_function("X-to-X k=5 n=1500 d=768 f32", |b| {
        b.iter(|| kth_neighbour_sq(rows(&x, d), 5))
    });
    g.finish();
}

fn kl_gradient(c: &mut Criterion) {
    let (n, d) = (1500, 768);
    let x: Vec<f32> = data(n, d, 0.3, 6);
    let w: Vec<f32> = data(20, d, -0.2, 7);
    let state =
        KlState::without_target_term(rows(&x, d), rows(&w, d), KlParams::new(5, false)).unwrap();
    let mut work = GradientWork::default();
    let mut g = c.benchmark_group("kl_gradient");
    for points in [1usize, 8] {
        let vs: Vec<f64> = data(points, d, 0.1, 8);
        let mut out = vec![0.0f64; points * d];
        g.throughput(Throughput::Elements((n * d * points) as u64));
        g.bench_with_input(
            BenchmarkId::new("n=1500 d=768 f32, points", points),
            &points,
            |b, _| b.iter(|| state.gradient_sums(black_box(&vs), &mut work, &mut out)),
        );
    }
    g.finish();
}

fn assignment(c: &mut Criterion) {
    let (n, k, d) = (20_000, 256, 128);
    let x32: Vec<f32> = data(n, d, 0.0, 9);
    let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let centers: Vec<f64> = data(k, d, 0.0, 10);
    let mut labels = vec![0u32; n];
    let mut dists = vec![0.0f64; n];
    let mut g = c.benchmark_group("assign");
    g.sample_size(20);
    g.throughput(Throughput::Elements((n * k * d) as u64));
    let norms32 = row_norms(rows(&x32, d));
    g.bench_function("N=20000 K=256 d=128 f32", |b| {
        b.iter(|| {
            assign(
                rows(&x32, d),
                &norms32,
                rows(&centers, d),
                &mut labels,
                &mut dists,
            )
        })
    });
    let norms64 = row_norms(rows(&x64, d));
    g.bench_function("N=20000 K=256 d=128 f64", |b| {
        b.iter(|| {
            assign(
                rows(&x64, d),
                &norms64,
                rows(&centers, d),
                &mut labels,
                &mut dists,
            )
        })
    });
    g.finish();
}

fn kmeans_iteration(c: &mut Criterion) {
    let (n, k, d) = (20_000, 256, 64);
    let x: Vec<f32> = data(n, d, 0.0, 11);
    let start: Vec<f64> = x[..k * d].iter().map(|&v| v as f64).collect();
    let params = KMeansParams {
        n_clusters: k,
        max_iter: 1,
        tol: 0.0,
        n_init: 1,
        seed: 0,
        init: KMeansInit::Centers {
            values: start,
            dim: d,
        },
        init_sample_size: 0,
    }
    .check()
    .unwrap();
    let mut g = c.benchmark_group("kmeans");
    g.sample_size(20);
    g.throughput(Throughput::Elements((n * k * d) as u64));
    // One assignment, one update, and the final labels' pass (Hamerly bounds) of a 1-iteration fit.
    g.bench_function("one Lloyd iteration N=20000 K=256 d=64 f32", |b| {
        b.iter(|| kmeans(rows(&x, d), &params, &mut |_, _| Ok(())).unwrap())
    });
    g.finish();
}

fn selection_step(c: &mut Criterion) {
    let (n, m, d) = (1500, 1500, 768);
    let x: Vec<f32> = data(n, d, 0.3, 12);
    let train: Vec<f32> = data(m, d, 0.0, 13);
    let w: Vec<f32> = data(20, d, -0.2, 14);
    let state = KlState::new(rows(&x, d), rows(&w, d), KlParams::new(5, false)).unwrap();
    let mean = rows(&x, d).column_means();
    let used = vec![false; m];
    let mut work = DescentWork::default();
    let mut cand = Candidate::default();
    let mut g = c.benchmark_group("select");
    g.sample_size(10);
    // What the loop does per candidate: 50 descent steps from mean(X), the snap to the nearest
    // unused pool row, the KL with that row.
    g.bench_function("descend 50 + snap + evaluate, n=M=1500 d=768 f32", |b| {
        b.iter(|| {
            let mut v = mean.clone();
            descend(&state, &mut v, 1.0, 0.01, 50, &mut work, &mut || Ok(())).unwrap();
            let (idx, _) = nearest_unused(rows(&train, d), &v, &used).unwrap();
            state.evaluate(rows(&train, d).row(idx), &mut cand);
            cand.kl
        })
    });
    g.finish();

    let (pool_rows, pd) = (200_000, 64);
    let pool: Vec<f32> = data(pool_rows, pd, 0.0, 15);
    let v: Vec<f64> = data(1, pd, 0.1, 16);
    let used = vec![false; pool_rows];
    let mut g = c.benchmark_group("snap");
    g.sample_size(20);
    g.throughput(Throughput::Bytes((pool_rows * pd * 4) as u64));
    g.bench_function("nearest_unused M=200000 d=64 f32", |b| {
        b.iter(|| nearest_unused(rows(&pool, pd), black_box(&v), &used))
    });
    g.finish();
}

/// The machine's streaming-read ceiling for the memory-bound scans: a parallel sum over 128 MiB
/// of float32 (far beyond the caches), in the same fixed chunks the core uses. Compare with
/// `snap` and run both with RAYON_NUM_THREADS=1 and 2.
fn memory_read(c: &mut Criterion) {
    use rayon::prelude::*;
    let values: Vec<f32> = data(1 << 25, 1, 0.0, 17);
    let mut g = c.benchmark_group("memory");
    g.sample_size(20);
    g.throughput(Throughput::Bytes((values.len() * 4) as u64));
    g.bench_function("parallel read 128 MiB f32", |b| {
        b.iter(|| {
            values
                .par_chunks(1 << 16)
                .map(|chunk| {
                    // 16 independent sums, so the adds keep up with memory.
                    let mut acc = [0.0f32; 16];
                    for part in chunk.chunks_exact(16) {
                        acc.iter_mut().zip(part).for_each(|(a, &v)| *a += v);
                    }
                    acc.iter().sum::<f32>()
                })
                .sum::<f32>()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    memory_read,
    vector_kernels,
    gram_tiles,
    kth_neighbour,
    kl_gradient,
    assignment,
    kmeans_iteration,
    selection_step
);
criterion_main!(benches);
