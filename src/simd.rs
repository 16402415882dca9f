//! The SIMD kernels every hot loop is built on, with runtime CPU dispatch (no
//! `target-cpu=native` build): AVX-512, AVX2+FMA, or portable scalar code.
//!
//! All levels compute bit-identical results: a reduction runs 32 f64 lanes over the leading
//! multiple of 32 elements (element j to lane j mod 32), then lanes 0..8 over the next
//! multiples of 8, then one scalar tail, summed in one fixed tree; every multiply-add is fused
//! (`mul_add` in the scalar code). So results do not depend on the CPU or the thread count.
//! The one exception is `nearest_centers_f32` (the nearest-center search of K-Means and
//! assignment), a float32 micro-kernel for AVX-512 or AVX2 whose approximate scores callers only
//! use where a rigorous error bound settles the answer (kmeans.rs re-checks the rest exactly).

use std::sync::OnceLock;

use crate::rows::{Element, Precision};

/// f64 lanes per reduction, shared by every level (4 independent AVX-512 FMA chains).
const LANES: usize = 32;
/// The narrower step after the 32-lane part: one AVX-512 vector.
const SUB_LANES: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Avx512,
    Avx2,
    Scalar,
}

fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

fn detect() -> Level {
    if std::env::var_os("GIO_RS_NO_SIMD").is_some() {
        return Level::Scalar;
    }
    let no_avx512 = std::env::var_os("GIO_RS_NO_AVX512").is_some();
    #[cfg(target_arch = "x86_64")]
    {
        if !no_avx512 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// Name of the dispatch level in use ("avx512", "avx2" or "scalar"), for benchmarks and bug
/// reports. `GIO_RS_NO_SIMD=1` forces "scalar".
pub fn level_name() -> &'static str {
    match level() {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2",
        Level::Scalar => "scalar",
    }
}

/// The fixed summation tree of the 32 lanes.
/// Whether the AVX-512 kernels run (the float32 Gram kernel is only fast there).
pub fn avx512_active() -> bool {
    level() == Level::Avx512
}

#[inline(always)]
fn sum_lanes(acc: &[f64; LANES]) -> f64 {
    let mut width = LANES;
    let mut lanes = *acc;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

/// Split points of a reduction over `len` elements: `(wide, narrow)` where `0..wide` runs on 32
/// lanes, `wide..narrow` on lanes 0..8, and `narrow..len` is the scalar tail.
#[inline(always)]
fn reduction_split(len: usize) -> (usize, usize) {
    let wide = len / LANES * LANES;
    (wide, wide + (len - wide) / SUB_LANES * SUB_LANES)
}

/// Reinterprets a slice of a stored type as its concrete float type.
#[inline(always)]
fn as_f64<T: Element>(s: &[T]) -> &[f64] {
    assert!(T::PRECISION == Precision::F64);
    // SAFETY: T is f64 (checked through its PRECISION tag, which only f64 has).
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f64, s.len()) }
}

#[inline(always)]
fn as_f32<T: Element>(s: &[T]) -> &[f32] {
    assert!(T::PRECISION == Precision::F32);
    // SAFETY: T is f32 (checked through its PRECISION tag, which only f32 has).
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) }
}

/// ‖a − b‖², computed in f64 whatever the stored types.
#[inline]
pub fn sq_dist<A: Element, B: Element>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len());
    use Precision::{F32, F64};
    match (A::PRECISION, B::PRECISION) {
        (F64, F64) => sq_dist_typed(as_f64(a), as_f64(b)),
        (F64, F32) => sq_dist_typed(as_f64(a), as_f32(b)),
        (F32, F64) => sq_dist_typed(as_f64(b), as_f32(a)),
        (F32, F32) => sq_dist_typed(as_f32(a), as_f32(b)),
    }
}

/// `acc[j] += c · (v[j] − x[j])` (fused), the gradient's per-row update.
#[inline]
pub fn add_scaled_difference<T: Element>(acc: &mut [f64], c: f64, v: &[f64], x: &[T]) {
    assert!(acc.len() == v.len() && v.len() == x.len());
    match T::PRECISION {
        Precision::F64 => axpy_typed(acc, c, v, as_f64(x)),
        Precision::F32 => axpy_typed(acc, c, v, as_f32(x)),
    }
}

/// a·b in f64: element j goes to lane j mod 8 over the leading multiple of 8, the rest to a
/// scalar tail, all fused multiply-adds, lanes summed in a fixed tree. Identical on every level.
#[inline]
pub fn dot<A: Element, B: Element>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len());
    use Precision::{F32, F64};
    match (A::PRECISION, B::PRECISION) {
        (F64, F64) => dot_typed(as_f64(a), as_f64(b)),
        (F64, F32) => dot_typed(as_f64(a), as_f32(b)),
        (F32, F64) => dot_typed(as_f32(a), as_f64(b)),
        (F32, F32) => dot_typed(as_f32(a), as_f32(b)),
    }
}

/// `out[r * b_rows + c] = a_r · b_c` for every row r of `a` and c of `b` (row-major, `dim`
/// columns each), each value bit-identical to `dot(a_r, b_c)`. Tiles of 4×4 rows share their loads.
pub fn dot_block<A: Element, B: Element>(a: &[A], b: &[B], dim: usize, out: &mut [f64]) {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    assert!(a.len() == na * dim && b.len() == nb * dim && out.len() == na * nb);
    use Precision::{F32, F64};
    match (A::PRECISION, B::PRECISION) {
        (F64, F64) => dot_block_typed(as_f64(a), as_f64(b), dim, out),
        (F64, F32) => dot_block_typed(as_f64(a), as_f32(b), dim, out),
        (F32, F64) => dot_block_typed(as_f32(a), as_f64(b), dim, out),
        (F32, F32) => dot_block_typed(as_f32(a), as_f32(b), dim, out),
    }
}

fn dot_block_typed<A: Lane, B: Lane>(a: &[A], b: &[B], dim: usize, out: &mut [f64]) {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    let (ta, tb) = if level() == Level::Avx512 {
        (na / 4 * 4, nb / 4 * 4)
    } else {
        (0, 0)
    };
    #[cfg(target_arch = "x86_64")]
    for r in (0..ta).step_by(4) {
        let ra = |p: usize| a[(r + p) * dim..].as_ptr();
        for c in (0..tb).step_by(4) {
            let rb = |q: usize| b[(c + q) * dim..].as_ptr();
            let mut tile = [[0.0f64; 4]; 4];
            // SAFETY: AVX-512F and FMA were detected; all 8 rows hold `dim` values.
            unsafe {
                x86::dot_tile_avx512(
                    [ra(0), ra(1), ra(2), ra(3)],
                    [rb(0), rb(1), rb(2), rb(3)],
                    dim,
                    &mut tile,
                )
            };
            for (p, tile_row) in tile.iter().enumerate() {
                out[(r + p) * nb + c..(r + p) * nb + c + 4].copy_from_slice(tile_row);
            }
        }
    }
    // Columns left over by the 4×4 tiles (all of them for a single column): 8 or 4 rows of `a`
    // against one column at a time, enough independent FMA chains to fill the pipeline.
    #[cfg(target_arch = "x86_64")]
    for c in tb..nb {
        let col = b[c * dim..].as_ptr();
        let mut r = 0;
        while r + 8 <= ta {
            let rows: [*const A; 8] = std::array::from_fn(|p| a[(r + p) * dim..].as_ptr());
            // SAFETY: AVX-512F and FMA were detected; all rows hold `dim` values.
            let values = unsafe { x86::dot_rows_avx512(rows, col, dim) };
            for (p, value) in values.iter().enumerate() {
                out[(r + p) * nb + c] = *value;
            }
            r += 8;
        }
        while r + 4 <= ta {
            let rows: [*const A; 4] = std::array::from_fn(|p| a[(r + p) * dim..].as_ptr());
            // SAFETY: as above.
            let values = unsafe { x86::dot_rows_avx512(rows, col, dim) };
            for (p, value) in values.iter().enumerate() {
                out[(r + p) * nb + c] = *value;
            }
            r += 4;
        }
    }
    for r in ta..na {
        for c in 0..nb {
            out[r * nb + c] = dot_typed(&a[r * dim..(r + 1) * dim], &b[c * dim..(c + 1) * dim]);
        }
    }
}

/// Centers packed for `nearest_centers_f32`: in panels of `width` centers (32 for the AVX-512
/// kernel, 16 for AVX2), each panel transposed (dim × width) and contiguous, so a tile streams
/// one panel; padded with +inf norms.
pub struct PackedCenters {
    /// `data[(c / width) * dim * width + j * width + c % width]` = center c's value j.
    data: Vec<f32>,
    norms: Vec<f32>,
    padded: usize,
    dim: usize,
    width: usize,
}

impl PackedCenters {
    /// Packs K × dim centers (row-major, float32 or float64) in float32; `None` when no float32
    /// kernel runs on this CPU (neither AVX-512 nor AVX2 with FMA).
    pub fn new<T: Element>(centers: &[T], dim: usize) -> Option<Self> {
        let width = match level() {
            Level::Avx512 => 32,
            Level::Avx2 => 16,
            Level::Scalar => return None,
        };
        Some(Self::with_width(centers, dim, width))
    }

    fn with_width<T: Element>(centers: &[T], dim: usize, width: usize) -> Self {
        let k = centers.len() / dim;
        let padded = k.div_ceil(width) * width;
        let mut data = vec![0.0f32; dim * padded];
        let mut norms = vec![f32::INFINITY; padded];
        for c in 0..k {
            let row = &centers[c * dim..(c + 1) * dim];
            for (j, &v) in row.iter().enumerate() {
                data[(c / width) * dim * width + j * width + c % width] = v.to_f64() as f32;
            }
            norms[c] = row
                .iter()
                .map(|&v| (v.to_f64() as f32) * (v.to_f64() as f32))
                .sum();
        }
        PackedCenters {
            data,
            norms,
            padded,
            dim,
            width,
        }
    }

    /// Centers including the padding (a multiple of the panel width).
    pub fn padded_len(&self) -> usize {
        self.padded
    }
}

/// For every row of `rows` (float32 or float64, row-major, rounded to float32): the index of the
/// nearest packed center by the float32 Gram form ‖c‖² − 2x·c (‖x‖² does not change the argmin),
/// ties to the lowest index, in `best`; its score in `best_score`; in `second` the lowest score
/// over all other centers. A GEMM-style micro-kernel: a tile of 8 rows × 32 centers (AVX-512) or
/// 6 rows × 16 centers (AVX2), broadcasts of x against center vectors, no horizontal sums.
/// The scores are float32 approximations: callers must allow for their rounding (see kmeans.rs).
pub fn nearest_centers_f32<T: Element>(
    rows: &[T],
    centers: &PackedCenters,
    best: &mut [u32],
    best_score: &mut [f32],
    second: &mut [f32],
) {
    let dim = centers.dim;
    let n = best.len();
    assert!(rows.len() == n * dim && best_score.len() == n && second.len() == n);
    #[cfg(target_arch = "x86_64")]
    match centers.width {
        32 => {
            nearest_tiles::<T, 8, 16>(rows, centers, best, best_score, second, |b, p, s, i, r| {
                // SAFETY: width 32 is packed only when AVX-512F and FMA were detected; `b` holds 8
                // rows, the panel 32 centers.
                unsafe { x86::nearest_tile_8x32_avx512(b, centers, p, s, i, r) }
            })
        }
        16 => nearest_tiles::<T, 6, 8>(rows, centers, best, best_score, second, |b, p, s, i, r| {
            // SAFETY: width 16 is packed only when AVX2 and FMA were detected; `b` holds 6 rows.
            unsafe { x86::nearest_tile_6x16_avx2(b, centers, p, s, i, r) }
        }),
        _ => unreachable!("PackedCenters are packed for a detected kernel"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("PackedCenters::new returns None off x86-64");
}

/// The float32 scores ‖c‖² − 2x·c of every row of `rows` (float32 or float64, rounded to
/// float32) against every packed center, row-major in `out` (rows × `padded_len()`; padding
/// columns get +inf). The same micro-kernels as `nearest_centers_f32`, storing every score.
pub fn center_scores_f32<T: Element>(rows: &[T], centers: &PackedCenters, out: &mut [f32]) {
    let dim = centers.dim;
    let n = rows.len() / dim;
    assert!(rows.len() == n * dim && out.len() == n * centers.padded);
    #[cfg(target_arch = "x86_64")]
    match centers.width {
        32 => score_tiles::<T, 8, 32>(rows, centers, out, |b, p, o| {
            // SAFETY: width 32 is packed only when AVX-512F and FMA were detected.
            unsafe { x86::scores_tile_8x32_avx512(b, centers, p, o) }
        }),
        16 => score_tiles::<T, 6, 16>(rows, centers, out, |b, p, o| {
            // SAFETY: width 16 is packed only when AVX2 and FMA were detected.
            unsafe { x86::scores_tile_6x16_avx2(b, centers, p, o) }
        }),
        _ => unreachable!("PackedCenters are packed for a detected kernel"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("PackedCenters::new returns None off x86-64");
}

/// Rows of `rows` in blocks of R (the last one zero-padded), rounded to float32.
fn row_blocks<T: Element, const R: usize>(rows: &[T], dim: usize) -> Vec<f32> {
    let n_blocks = (rows.len() / dim).div_ceil(R);
    let mut blocks = vec![0.0f32; n_blocks * R * dim];
    match T::PRECISION {
        Precision::F32 => blocks[..rows.len()].copy_from_slice(as_f32(rows)),
        Precision::F64 => blocks
            .iter_mut()
            .zip(as_f64(rows))
            .for_each(|(b, &v)| *b = v as f32),
    }
    blocks
}

/// Runs `tile` (R rows × W centers) over every row block and center panel, copying the scores
/// of the real rows into `out`.
#[allow(dead_code)] // unused off x86-64
fn score_tiles<T: Element, const R: usize, const W: usize>(
    rows: &[T],
    centers: &PackedCenters,
    out: &mut [f32],
    tile: impl Fn(&[f32], usize, &mut [[f32; W]; R]),
) {
    let (dim, padded) = (centers.dim, centers.padded);
    let n = rows.len() / dim;
    let blocks = row_blocks::<T, R>(rows, dim);
    let mut scores = [[0.0f32; W]; R];
    for c0 in (0..padded).step_by(W) {
        for (b, block) in blocks.chunks_exact(R * dim).enumerate() {
            tile(block, c0, &mut scores);
            for (r, tile_row) in scores.iter().enumerate().take(n - (b * R).min(n)) {
                let at = (b * R + r) * padded + c0;
                out[at..at + W].copy_from_slice(tile_row);
            }
        }
    }
}

/// Per row of a tile, per lane: the best score, its center, and the lane's runner-up score.
type TileState<const R: usize, const L: usize> = ([[f32; L]; R], [[i32; L]; R], [[f32; L]; R]);

/// Runs `tile` over row blocks of R (the last one zero-padded) and center panels, then folds the
/// L lanes of every row (lane l sees centers ≡ l mod L).
#[allow(dead_code)] // unused off x86-64
fn nearest_tiles<T: Element, const R: usize, const L: usize>(
    rows: &[T],
    centers: &PackedCenters,
    best: &mut [u32],
    best_score: &mut [f32],
    second: &mut [f32],
    tile: impl Fn(&[f32], usize, &mut [[f32; L]; R], &mut [[i32; L]; R], &mut [[f32; L]; R]),
) {
    let dim = centers.dim;
    let n_blocks = best.len().div_ceil(R);
    let blocks = row_blocks::<T, R>(rows, dim);
    let mut state: Vec<TileState<R, L>> = vec![
        (
            [[f32::INFINITY; L]; R],
            [[0i32; L]; R],
            [[f32::INFINITY; L]; R]
        );
        n_blocks
    ];
    // Panels outer: each is read from memory once per call and reused by every row block.
    for c0 in (0..centers.padded).step_by(centers.width) {
        for (block, (score, index, runner_up)) in blocks.chunks_exact(R * dim).zip(&mut state) {
            tile(block, c0, score, index, runner_up);
        }
    }
    for (i, ((o, bs), sec)) in best
        .iter_mut()
        .zip(best_score.iter_mut())
        .zip(second.iter_mut())
        .enumerate()
    {
        let (score, index, runner_up) = &state[i / R];
        let (score, index, runner_up) = (&score[i % R], &index[i % R], &runner_up[i % R]);
        // The lowest score, and among equal scores the lowest center index.
        let lane = (0..L)
            .min_by(|&a, &b| score[a].total_cmp(&score[b]).then(index[a].cmp(&index[b])))
            .expect("at least one lane");
        *o = index[lane] as u32;
        *bs = score[lane];
        // Second: every lane's runner-up and every other lane's best.
        let others = (0..L).filter(|&l| l != lane).map(|l| score[l]);
        *sec = runner_up
            .iter()
            .copied()
            .chain(others)
            .fold(f32::INFINITY, f32::min);
    }
}

/// `acc[p][j] += coefs[r][p] · rows[r][j]` for every row r in order and point p (`acc` is
/// points × dim, `coefs` rows × points, row-major), fused: the transposed product Xᵀ·C.
pub fn add_weighted_rows<T: Element>(acc: &mut [f64], coefs: &[f64], rows: &[T], dim: usize) {
    let points = acc.len() / dim;
    let n_rows = rows.len() / dim;
    assert!(
        acc.len() == points * dim && rows.len() == n_rows * dim && coefs.len() == n_rows * points
    );
    match T::PRECISION {
        Precision::F64 => weighted_rows_typed(acc, coefs, as_f64(rows), dim),
        Precision::F32 => weighted_rows_typed(acc, coefs, as_f32(rows), dim),
    }
}

fn weighted_rows_typed<T: Lane>(acc: &mut [f64], coefs: &[f64], rows: &[T], dim: usize) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the features were detected on this CPU; shapes are checked by the caller.
        Level::Avx512 => unsafe { x86::weighted_rows_avx512(acc, coefs, rows, dim) },
        _ => weighted_rows_scalar(acc, coefs, rows, dim),
    }
}

#[inline(always)]
fn weighted_rows_scalar<T: Lane>(acc: &mut [f64], coefs: &[f64], rows: &[T], dim: usize) {
    let points = acc.len() / dim;
    for (r, row) in rows.chunks_exact(dim).enumerate() {
        for (p, acc) in acc.chunks_exact_mut(dim).enumerate() {
            let c = coefs[r * points + p];
            for (a, x) in acc.iter_mut().zip(row) {
                *a = c.mul_add(x.f64(), *a);
            }
        }
    }
}

#[inline(always)]
fn dot_typed<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the features were detected on this CPU; lengths are equal (checked by callers).
        Level::Avx512 => unsafe { x86::dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { x86::dot_avx2(a, b) },
        _ => dot_scalar(a, b),
    }
}

/// Sums 8 lanes in the fixed tree used by every dot product.
#[inline(always)]
fn sum8(acc: &[f64; 8]) -> f64 {
    let mut lanes = *acc;
    let mut width = 8;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

#[inline(always)]
fn dot_tail<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
    let mut tail = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        tail = x.f64().mul_add(y.f64(), tail);
    }
    tail
}

#[inline(always)]
fn dot_scalar<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
    let full = a.len() / 8 * 8;
    let mut acc = [0.0f64; 8];
    for (xa, xb) in a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] = xa[l].f64().mul_add(xb[l].f64(), acc[l]);
        }
    }
    sum8(&acc) + dot_tail(&a[full..], &b[full..])
}

#[inline(always)]
fn sq_dist_typed<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the features were detected on this CPU; lengths are equal (checked above).
        Level::Avx512 => unsafe { x86::sq_dist_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { x86::sq_dist_avx2(a, b) },
        _ => sq_dist_scalar(a, b),
    }
}

#[inline(always)]
fn axpy_typed<T: Lane>(acc: &mut [f64], c: f64, v: &[f64], x: &[T]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the features were detected on this CPU; lengths are equal (checked above).
        Level::Avx512 => unsafe { x86::axpy_avx512(acc, c, v, x) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { x86::axpy_avx2(acc, c, v, x) },
        _ => axpy_scalar(acc, c, v, x),
    }
}

/// A float that the kernels load (and widen to f64).
pub(crate) trait Lane: Copy {
    fn f64(self) -> f64;
    #[cfg(target_arch = "x86_64")]
    /// Loads 8 values as f64. SAFETY: `p` points to 8 readable values; AVX-512F is available.
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d;
    #[cfg(target_arch = "x86_64")]
    /// Loads 4 values as f64. SAFETY: `p` points to 4 readable values; AVX is available.
    unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d;
}

impl Lane for f64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f64) -> std::arch::x86_64::__m512d {
        std::arch::x86_64::_mm512_loadu_pd(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load4(p: *const f64) -> std::arch::x86_64::__m256d {
        std::arch::x86_64::_mm256_loadu_pd(p)
    }
}

impl Lane for f32 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m512d {
        std::arch::x86_64::_mm512_cvtps_pd(std::arch::x86_64::_mm256_loadu_ps(p))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load4(p: *const f32) -> std::arch::x86_64::__m256d {
        std::arch::x86_64::_mm256_cvtps_pd(std::arch::x86_64::_mm_loadu_ps(p))
    }
}

#[inline(always)]
fn sq_dist_tail<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
    let mut tail = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        let t = x.f64() - y.f64();
        tail = t.mul_add(t, tail);
    }
    tail
}

fn sq_dist_scalar<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (wide, narrow) = reduction_split(a.len());
    for (xa, xb) in a[..wide]
        .chunks_exact(LANES)
        .zip(b[..wide].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let t = xa[l].f64() - xb[l].f64();
            acc[l] = t.mul_add(t, acc[l]);
        }
    }
    for (xa, xb) in a[wide..narrow]
        .chunks_exact(SUB_LANES)
        .zip(b[wide..narrow].chunks_exact(SUB_LANES))
    {
        for l in 0..SUB_LANES {
            let t = xa[l].f64() - xb[l].f64();
            acc[l] = t.mul_add(t, acc[l]);
        }
    }
    sum_lanes(&acc) + sq_dist_tail(&a[narrow..], &b[narrow..])
}

fn axpy_scalar<T: Lane>(acc: &mut [f64], c: f64, v: &[f64], x: &[T]) {
    for ((a, &vj), &xj) in acc.iter_mut().zip(v).zip(x) {
        *a = c.mul_add(vj - xj.f64(), *a);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{dot_tail, reduction_split, sq_dist_tail, sum8, sum_lanes, Lane, LANES, SUB_LANES};
    use std::arch::x86_64::*;

    /// SAFETY: AVX-512F and FMA available; `a.len() == b.len()`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn sq_dist_avx512<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
        let (wide, narrow) = reduction_split(a.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_pd(); 4];
        let mut j = 0;
        while j < wide {
            for (q, acc) in acc.iter_mut().enumerate() {
                let t = _mm512_sub_pd(A::load8(pa.add(j + 8 * q)), B::load8(pb.add(j + 8 * q)));
                *acc = _mm512_fmadd_pd(t, t, *acc);
            }
            j += LANES;
        }
        while j < narrow {
            let t = _mm512_sub_pd(A::load8(pa.add(j)), B::load8(pb.add(j)));
            acc[0] = _mm512_fmadd_pd(t, t, acc[0]);
            j += SUB_LANES;
        }
        let mut lanes = [0.0f64; LANES];
        for (q, v) in acc.iter().enumerate() {
            _mm512_storeu_pd(lanes.as_mut_ptr().add(8 * q), *v);
        }
        sum_lanes(&lanes) + sq_dist_tail(&a[narrow..], &b[narrow..])
    }

    /// SAFETY: AVX2 and FMA available; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sq_dist_avx2<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
        let (wide, narrow) = reduction_split(a.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_pd(); 8];
        let mut j = 0;
        while j < wide {
            for (q, acc) in acc.iter_mut().enumerate() {
                let t = _mm256_sub_pd(A::load4(pa.add(j + 4 * q)), B::load4(pb.add(j + 4 * q)));
                *acc = _mm256_fmadd_pd(t, t, *acc);
            }
            j += LANES;
        }
        while j < narrow {
            for (q, acc) in acc.iter_mut().take(2).enumerate() {
                let t = _mm256_sub_pd(A::load4(pa.add(j + 4 * q)), B::load4(pb.add(j + 4 * q)));
                *acc = _mm256_fmadd_pd(t, t, *acc);
            }
            j += SUB_LANES;
        }
        let mut lanes = [0.0f64; LANES];
        for (q, v) in acc.iter().enumerate() {
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4 * q), *v);
        }
        sum_lanes(&lanes) + sq_dist_tail(&a[narrow..], &b[narrow..])
    }

    /// SAFETY: AVX-512F and FMA available; all slices have the same length.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn axpy_avx512<T: Lane>(acc: &mut [f64], c: f64, v: &[f64], x: &[T]) {
        let full = acc.len() / 8 * 8;
        let (pa, pv, px) = (acc.as_mut_ptr(), v.as_ptr(), x.as_ptr());
        let cv = _mm512_set1_pd(c);
        let mut j = 0;
        while j < full {
            let t = _mm512_sub_pd(_mm512_loadu_pd(pv.add(j)), T::load8(px.add(j)));
            _mm512_storeu_pd(
                pa.add(j),
                _mm512_fmadd_pd(cv, t, _mm512_loadu_pd(pa.add(j))),
            );
            j += 8;
        }
        for j in full..acc.len() {
            acc[j] = c.mul_add(v[j] - x[j].f64(), acc[j]);
        }
    }

    /// SAFETY: AVX-512F and FMA available; `a.len() == b.len()`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn dot_avx512<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
        let full = a.len() / 8 * 8;
        let mut acc = _mm512_setzero_pd();
        let mut j = 0;
        while j < full {
            acc = _mm512_fmadd_pd(
                A::load8(a.as_ptr().add(j)),
                B::load8(b.as_ptr().add(j)),
                acc,
            );
            j += 8;
        }
        let mut lanes = [0.0f64; 8];
        _mm512_storeu_pd(lanes.as_mut_ptr(), acc);
        sum8(&lanes) + dot_tail(&a[full..], &b[full..])
    }

    /// SAFETY: AVX2 and FMA available; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_avx2<A: Lane, B: Lane>(a: &[A], b: &[B]) -> f64 {
        let full = a.len() / 8 * 8;
        let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut j = 0;
        while j < full {
            lo = _mm256_fmadd_pd(A::load4(a.as_ptr().add(j)), B::load4(b.as_ptr().add(j)), lo);
            hi = _mm256_fmadd_pd(
                A::load4(a.as_ptr().add(j + 4)),
                B::load4(b.as_ptr().add(j + 4)),
                hi,
            );
            j += 8;
        }
        let mut lanes = [0.0f64; 8];
        _mm256_storeu_pd(lanes.as_mut_ptr(), lo);
        _mm256_storeu_pd(lanes.as_mut_ptr().add(4), hi);
        sum8(&lanes) + dot_tail(&a[full..], &b[full..])
    }

    /// The 16 dot products of 4 rows of A with 4 rows of B (`dim` values each), every one
    /// bit-identical to `dot_scalar`.
    /// SAFETY: AVX-512F and FMA available; all pointers address `dim` readable values.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn dot_tile_avx512<A: Lane, B: Lane>(
        a: [*const A; 4],
        b: [*const B; 4],
        dim: usize,
        out: &mut [[f64; 4]; 4],
    ) {
        let full = dim / 8 * 8;
        let mut acc = [[_mm512_setzero_pd(); 4]; 4];
        let mut j = 0;
        while j < full {
            let av = [
                A::load8(a[0].add(j)),
                A::load8(a[1].add(j)),
                A::load8(a[2].add(j)),
                A::load8(a[3].add(j)),
            ];
            let bv = [
                B::load8(b[0].add(j)),
                B::load8(b[1].add(j)),
                B::load8(b[2].add(j)),
                B::load8(b[3].add(j)),
            ];
            for (acc_row, &ap) in acc.iter_mut().zip(&av) {
                for (cell, &bq) in acc_row.iter_mut().zip(&bv) {
                    *cell = _mm512_fmadd_pd(ap, bq, *cell);
                }
            }
            j += 8;
        }
        for p in 0..4 {
            let ta = std::slice::from_raw_parts(a[p].add(full), dim - full);
            for q in 0..4 {
                let tb = std::slice::from_raw_parts(b[q].add(full), dim - full);
                let mut lanes = [0.0f64; 8];
                _mm512_storeu_pd(lanes.as_mut_ptr(), acc[p][q]);
                out[p][q] = sum8(&lanes) + dot_tail(ta, tb);
            }
        }
    }

    /// The dot products of R rows of A with one row of B, each bit-identical to `dot_scalar`.
    /// SAFETY: AVX-512F and FMA available; all pointers address `dim` readable values.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn dot_rows_avx512<A: Lane, B: Lane, const R: usize>(
        a: [*const A; R],
        b: *const B,
        dim: usize,
    ) -> [f64; R] {
        let full = dim / 8 * 8;
        let mut acc = [_mm512_setzero_pd(); R];
        let mut j = 0;
        while j < full {
            let bv = B::load8(b.add(j));
            for (cell, ap) in acc.iter_mut().zip(&a) {
                *cell = _mm512_fmadd_pd(A::load8(ap.add(j)), bv, *cell);
            }
            j += 8;
        }
        let tb = std::slice::from_raw_parts(b.add(full), dim - full);
        let mut out = [0.0f64; R];
        for (p, o) in out.iter_mut().enumerate() {
            let ta = std::slice::from_raw_parts(a[p].add(full), dim - full);
            let mut lanes = [0.0f64; 8];
            _mm512_storeu_pd(lanes.as_mut_ptr(), acc[p]);
            *o = sum8(&lanes) + dot_tail(ta, tb);
        }
        out
    }

    /// Scores ‖c‖² − 2x·c of 8 rows of `block` (row-major) against the 32 packed centers from
    /// `c0`, folded into the rows' per-lane best (strict `<`, so a lane keeps its lowest index).
    /// SAFETY: AVX-512F and FMA available; `block` holds 8 rows of `centers.dim` values;
    /// `c0 + 32 <= centers.padded`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn nearest_tile_8x32_avx512(
        block: &[f32],
        centers: &super::PackedCenters,
        c0: usize,
        best_score: &mut [[f32; 16]; 8],
        best_index: &mut [[i32; 16]; 8],
        second_score: &mut [[f32; 16]; 8],
    ) {
        let dim = centers.dim;
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        let (pb, panel) = (block.as_ptr(), centers.data.as_ptr().add(c0 * dim));
        for j in 0..dim {
            let col = panel.add(j * 32);
            let (c_lo, c_hi) = (_mm512_loadu_ps(col), _mm512_loadu_ps(col.add(16)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*pb.add(r * dim + j));
                acc_r[0] = _mm512_fmadd_ps(x, c_lo, acc_r[0]);
                acc_r[1] = _mm512_fmadd_ps(x, c_hi, acc_r[1]);
            }
        }
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let minus_two = _mm512_set1_ps(-2.0);
        for (((acc_r, score_r), index_r), second_r) in acc
            .iter()
            .zip(best_score.iter_mut())
            .zip(best_index.iter_mut())
            .zip(second_score.iter_mut())
        {
            let mut score = _mm512_loadu_ps(score_r.as_ptr());
            let mut index = _mm512_loadu_si512(index_r.as_ptr() as *const _);
            let mut second = _mm512_loadu_ps(second_r.as_ptr());
            for (h, &dotv) in acc_r.iter().enumerate() {
                let start = c0 + 16 * h;
                let candidate = _mm512_fmadd_ps(
                    minus_two,
                    dotv,
                    _mm512_loadu_ps(centers.norms.as_ptr().add(start)),
                );
                let better = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(candidate, score);
                let runner_up = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(candidate, second);
                // A new best pushes the old best to second place; else it may be a new second.
                second = _mm512_mask_blend_ps(
                    better,
                    _mm512_mask_blend_ps(runner_up, second, candidate),
                    score,
                );
                score = _mm512_mask_blend_ps(better, score, candidate);
                let ids = _mm512_add_epi32(lanes, _mm512_set1_epi32(start as i32));
                index = _mm512_mask_blend_epi32(better, index, ids);
            }
            _mm512_storeu_ps(score_r.as_mut_ptr(), score);
            _mm512_storeu_si512(index_r.as_mut_ptr() as *mut _, index);
            _mm512_storeu_ps(second_r.as_mut_ptr(), second);
        }
    }

    /// The scores ‖c‖² − 2x·c of 8 rows of `block` against the 32 packed centers from `c0`.
    /// SAFETY: AVX-512F and FMA available; `block` holds 8 rows of `centers.dim` values;
    /// `c0 + 32 <= centers.padded`, centers packed with width 32.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn scores_tile_8x32_avx512(
        block: &[f32],
        centers: &super::PackedCenters,
        c0: usize,
        out: &mut [[f32; 32]; 8],
    ) {
        let dim = centers.dim;
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        let (pb, panel) = (block.as_ptr(), centers.data.as_ptr().add(c0 * dim));
        for j in 0..dim {
            let col = panel.add(j * 32);
            let (c_lo, c_hi) = (_mm512_loadu_ps(col), _mm512_loadu_ps(col.add(16)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*pb.add(r * dim + j));
                acc_r[0] = _mm512_fmadd_ps(x, c_lo, acc_r[0]);
                acc_r[1] = _mm512_fmadd_ps(x, c_hi, acc_r[1]);
            }
        }
        let minus_two = _mm512_set1_ps(-2.0);
        let norms = centers.norms.as_ptr().add(c0);
        for (acc_r, out_r) in acc.iter().zip(out.iter_mut()) {
            for (h, &dotv) in acc_r.iter().enumerate() {
                let score = _mm512_fmadd_ps(minus_two, dotv, _mm512_loadu_ps(norms.add(16 * h)));
                _mm512_storeu_ps(out_r.as_mut_ptr().add(16 * h), score);
            }
        }
    }

    /// The AVX2 version of `scores_tile_8x32_avx512`: 6 rows × 16 centers.
    /// SAFETY: AVX2 and FMA available; `block` holds 6 rows of `centers.dim` values;
    /// `c0 + 16 <= centers.padded`, centers packed with width 16.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scores_tile_6x16_avx2(
        block: &[f32],
        centers: &super::PackedCenters,
        c0: usize,
        out: &mut [[f32; 16]; 6],
    ) {
        let dim = centers.dim;
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        let (pb, panel) = (block.as_ptr(), centers.data.as_ptr().add(c0 * dim));
        for j in 0..dim {
            let col = panel.add(j * 16);
            let (c_lo, c_hi) = (_mm256_loadu_ps(col), _mm256_loadu_ps(col.add(8)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*pb.add(r * dim + j));
                acc_r[0] = _mm256_fmadd_ps(x, c_lo, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(x, c_hi, acc_r[1]);
            }
        }
        let minus_two = _mm256_set1_ps(-2.0);
        let norms = centers.norms.as_ptr().add(c0);
        for (acc_r, out_r) in acc.iter().zip(out.iter_mut()) {
            for (h, &dotv) in acc_r.iter().enumerate() {
                let score = _mm256_fmadd_ps(minus_two, dotv, _mm256_loadu_ps(norms.add(8 * h)));
                _mm256_storeu_ps(out_r.as_mut_ptr().add(8 * h), score);
            }
        }
    }

    /// The AVX2 version of `nearest_tile_8x32_avx512`: 6 rows × 16 centers (12 accumulators),
    /// lane l of a row's state sees the centers ≡ l mod 8.
    /// SAFETY: AVX2 and FMA available; `block` holds 6 rows of `centers.dim` values;
    /// `c0 + 16 <= centers.padded`, centers packed with width 16.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn nearest_tile_6x16_avx2(
        block: &[f32],
        centers: &super::PackedCenters,
        c0: usize,
        best_score: &mut [[f32; 8]; 6],
        best_index: &mut [[i32; 8]; 6],
        second_score: &mut [[f32; 8]; 6],
    ) {
        let dim = centers.dim;
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        let (pb, panel) = (block.as_ptr(), centers.data.as_ptr().add(c0 * dim));
        for j in 0..dim {
            let col = panel.add(j * 16);
            let (c_lo, c_hi) = (_mm256_loadu_ps(col), _mm256_loadu_ps(col.add(8)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*pb.add(r * dim + j));
                acc_r[0] = _mm256_fmadd_ps(x, c_lo, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(x, c_hi, acc_r[1]);
            }
        }
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let minus_two = _mm256_set1_ps(-2.0);
        for (((acc_r, score_r), index_r), second_r) in acc
            .iter()
            .zip(best_score.iter_mut())
            .zip(best_index.iter_mut())
            .zip(second_score.iter_mut())
        {
            let mut score = _mm256_loadu_ps(score_r.as_ptr());
            let mut index = _mm256_loadu_si256(index_r.as_ptr() as *const __m256i);
            let mut second = _mm256_loadu_ps(second_r.as_ptr());
            for (h, &dotv) in acc_r.iter().enumerate() {
                let start = c0 + 8 * h;
                let candidate = _mm256_fmadd_ps(
                    minus_two,
                    dotv,
                    _mm256_loadu_ps(centers.norms.as_ptr().add(start)),
                );
                let better = _mm256_cmp_ps::<_CMP_LT_OQ>(candidate, score);
                let runner_up = _mm256_cmp_ps::<_CMP_LT_OQ>(candidate, second);
                // A new best pushes the old best to second place; else it may be a new second.
                second = _mm256_blendv_ps(
                    _mm256_blendv_ps(second, candidate, runner_up),
                    score,
                    better,
                );
                score = _mm256_blendv_ps(score, candidate, better);
                let ids = _mm256_add_epi32(lanes, _mm256_set1_epi32(start as i32));
                index = _mm256_castps_si256(_mm256_blendv_ps(
                    _mm256_castsi256_ps(index),
                    _mm256_castsi256_ps(ids),
                    better,
                ));
            }
            _mm256_storeu_ps(score_r.as_mut_ptr(), score);
            _mm256_storeu_si256(index_r.as_mut_ptr() as *mut __m256i, index);
            _mm256_storeu_ps(second_r.as_mut_ptr(), second);
        }
    }

    /// `weighted_rows_avx512` for point 0 alone (coefficient `coefs[r * points]`).
    /// SAFETY: as `weighted_rows_avx512`; `acc` is that point's `dim` values.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn weighted_rows_one_avx512<T: Lane>(
        acc: &mut [f64],
        coefs: &[f64],
        points: usize,
        rows: &[T],
        dim: usize,
    ) {
        const TILE: usize = 64;
        let n_rows = rows.len() / dim;
        let full = dim / TILE * TILE;
        let (pa, pr) = (acc.as_mut_ptr(), rows.as_ptr());
        let mut j = 0;
        while j < full {
            let mut a: [__m512d; 8] = std::array::from_fn(|q| _mm512_loadu_pd(pa.add(j + 8 * q)));
            for r in 0..n_rows {
                let row = pr.add(r * dim + j);
                let c = _mm512_set1_pd(coefs[r * points]);
                for (q, aq) in a.iter_mut().enumerate() {
                    *aq = _mm512_fmadd_pd(c, T::load8(row.add(8 * q)), *aq);
                }
            }
            for (q, aq) in a.iter().enumerate() {
                _mm512_storeu_pd(pa.add(j + 8 * q), *aq);
            }
            j += TILE;
        }
        if full < dim {
            for r in 0..n_rows {
                let c = coefs[r * points];
                for jj in full..dim {
                    acc[jj] = c.mul_add(rows[r * dim + jj].f64(), acc[jj]);
                }
            }
        }
    }

    /// Column tiles of 32 values for two points at a time stay in registers across all rows.
    /// SAFETY: AVX-512F and FMA available; `acc` is points×dim, `coefs` rows×points, `rows` rows×dim.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn weighted_rows_avx512<T: Lane>(
        acc: &mut [f64],
        coefs: &[f64],
        rows: &[T],
        dim: usize,
    ) {
        let points = acc.len() / dim;
        let mut p = 0;
        if points % 2 == 1 {
            // An odd point out: 64 columns at a time, so 8 FMA chains run side by side.
            weighted_rows_one_avx512(&mut acc[..dim], coefs, points, rows, dim);
            p = 1;
        }
        while p + 4 <= points {
            weighted_rows_group_avx512::<T, 4>(acc, coefs, rows, dim, p);
            p += 4;
        }
        if p < points {
            weighted_rows_group_avx512::<T, 2>(acc, coefs, rows, dim, p);
        }
    }

    /// `weighted_rows_avx512` for points `first..first + P`: column tiles of 32 values for the P
    /// points stay in registers across all rows, each row's tile is loaded once for all of them.
    /// SAFETY: as `weighted_rows_avx512`; `first + P <= points`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn weighted_rows_group_avx512<T: Lane, const P: usize>(
        acc: &mut [f64],
        coefs: &[f64],
        rows: &[T],
        dim: usize,
        first: usize,
    ) {
        const TILE: usize = 32;
        let points = acc.len() / dim;
        let n_rows = rows.len() / dim;
        let full = dim / TILE * TILE;
        let (pa, pr) = (acc.as_mut_ptr(), rows.as_ptr());
        let mut j = 0;
        while j < full {
            let mut a: [[__m512d; 4]; P] = std::array::from_fn(|p| {
                std::array::from_fn(|q| _mm512_loadu_pd(pa.add((first + p) * dim + j + 8 * q)))
            });
            for r in 0..n_rows {
                let row = pr.add(r * dim + j);
                let x: [__m512d; 4] = std::array::from_fn(|q| T::load8(row.add(8 * q)));
                for (p, ap) in a.iter_mut().enumerate() {
                    let c = _mm512_set1_pd(coefs[r * points + first + p]);
                    for (aq, &xq) in ap.iter_mut().zip(&x) {
                        *aq = _mm512_fmadd_pd(c, xq, *aq);
                    }
                }
            }
            for (p, ap) in a.iter().enumerate() {
                for (q, aq) in ap.iter().enumerate() {
                    _mm512_storeu_pd(pa.add((first + p) * dim + j + 8 * q), *aq);
                }
            }
            j += TILE;
        }
        if full < dim {
            for r in 0..n_rows {
                let row = &rows[r * dim..(r + 1) * dim];
                for p in first..first + P {
                    let c = coefs[r * points + p];
                    for jj in full..dim {
                        acc[p * dim + jj] = c.mul_add(row[jj].f64(), acc[p * dim + jj]);
                    }
                }
            }
        }
    }

    /// SAFETY: AVX2 and FMA available; all slices have the same length.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy_avx2<T: Lane>(acc: &mut [f64], c: f64, v: &[f64], x: &[T]) {
        let full = acc.len() / 4 * 4;
        let (pa, pv, px) = (acc.as_mut_ptr(), v.as_ptr(), x.as_ptr());
        let cv = _mm256_set1_pd(c);
        let mut j = 0;
        while j < full {
            let t = _mm256_sub_pd(_mm256_loadu_pd(pv.add(j)), T::load4(px.add(j)));
            _mm256_storeu_pd(
                pa.add(j),
                _mm256_fmadd_pd(cv, t, _mm256_loadu_pd(pa.add(j))),
            );
            j += 4;
        }
        for j in full..acc.len() {
            acc[j] = c.mul_add(v[j] - x[j].f64(), acc[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(d: usize, seed: f64) -> (Vec<f64>, Vec<f32>) {
        let a = (0..d)
            .map(|i| (i as f64 * 0.37 + seed).sin() * 3.0)
            .collect();
        let b = (0..d)
            .map(|i| ((i as f64 * 0.11 + seed).cos() * 3.0) as f32)
            .collect();
        (a, b)
    }

    #[test]
    fn dot_block_equals_single_dots() {
        for (na, nb, d) in [
            (1usize, 1usize, 1usize),
            (5, 7, 8),
            (9, 4, 13),
            (8, 12, 64),
            (6, 5, 771),
            (16, 1, 100),
            (12, 3, 33),
            (20, 1, 768),
        ] {
            let a: Vec<f32> = (0..na * d)
                .map(|i| ((i as f64 * 0.37).sin() * 3.0) as f32)
                .collect();
            let b: Vec<f32> = (0..nb * d)
                .map(|i| ((i as f64 * 0.11).cos() * 3.0) as f32)
                .collect();
            let mut out = vec![0.0; na * nb];
            dot_block(&a, &b, d, &mut out);
            for r in 0..na {
                for c in 0..nb {
                    let single = dot(&a[r * d..(r + 1) * d], &b[c * d..(c + 1) * d]);
                    assert_eq!(
                        out[r * nb + c].to_bits(),
                        single.to_bits(),
                        "{na}x{nb} d={d} ({r},{c})"
                    );
                    let naive: f64 = a[r * d..(r + 1) * d]
                        .iter()
                        .zip(&b[c * d..(c + 1) * d])
                        .map(|(x, y)| *x as f64 * *y as f64)
                        .sum();
                    assert!((single - naive).abs() <= 1e-12 * (1.0 + naive.abs()));
                }
            }
        }
    }

    #[test]
    fn nearest_center_and_score_kernels_agree_with_float64() {
        // Every float32 kernel this CPU runs, on shapes off every tile size, for f32 and f64
        // rows: the chosen center's score is the smallest (within float32 roundoff of the f64
        // scores), `second` is the next one, ties go to the lowest index.
        #[cfg(target_arch = "x86_64")]
        let widths: Vec<usize> = [
            (32, is_x86_feature_detected!("avx512f")),
            (16, is_x86_feature_detected!("avx2")),
        ]
        .iter()
        .filter(|(_, ok)| *ok && is_x86_feature_detected!("fma"))
        .map(|(w, _)| *w)
        .collect();
        #[cfg(not(target_arch = "x86_64"))]
        let widths: Vec<usize> = Vec::new();
        for &width in &widths {
            for (n, k, d) in [
                (1usize, 1usize, 1usize),
                (13, 5, 7),
                (37, 33, 19),
                (50, 70, 64),
            ] {
                let x: Vec<f64> = (0..n * d).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
                let mut centers: Vec<f64> =
                    (0..k * d).map(|i| (i as f64 * 0.11).cos() * 3.0).collect();
                if k > 3 {
                    // A duplicated center: equal scores, the lower index must win.
                    let copy = centers[..d].to_vec();
                    centers[3 * d..4 * d].copy_from_slice(&copy);
                }
                let packed = PackedCenters::with_width(&centers, d, width);
                let run = |rows: &[f64]| {
                    let (mut b, mut s, mut t) = (vec![0u32; n], vec![0.0f32; n], vec![0.0f32; n]);
                    nearest_centers_f32(rows, &packed, &mut b, &mut s, &mut t);
                    let rows32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
                    let (mut b2, mut s2, mut t2) =
                        (vec![0u32; n], vec![0.0f32; n], vec![0.0f32; n]);
                    nearest_centers_f32(&rows32, &packed, &mut b2, &mut s2, &mut t2);
                    // f64 rows are rounded to f32 first: the same answer as the f32 rows.
                    assert_eq!((&b, &s, &t), (&b2, &s2, &t2), "width {width}");
                    (b, s, t)
                };
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let (best, score, second) = run(&x);
                let mut all = vec![0.0f32; n * packed.padded];
                center_scores_f32(&x, &packed, &mut all);
                for r in 0..n {
                    let row = &x32[r * d..(r + 1) * d];
                    let exact: Vec<f64> = (0..k)
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
                        .collect();
                    let tol = 1e-4 * (1.0 + exact.iter().fold(0.0f64, |m, v| m.max(v.abs())));
                    let min = exact.iter().copied().fold(f64::INFINITY, f64::min);
                    let label = best[r] as usize;
                    let row_scores = &all[r * packed.padded..(r + 1) * packed.padded];
                    for (c, &v) in row_scores.iter().enumerate() {
                        if c < k {
                            assert!((v as f64 - exact[c]).abs() <= tol, "width {width} score");
                        } else {
                            assert_eq!(v, f32::INFINITY, "padding");
                        }
                    }
                    assert!(
                        exact[label] <= min + tol,
                        "width {width} ({n},{k},{d}) row {r}"
                    );
                    assert!((score[r] as f64 - exact[label]).abs() <= tol);
                    if k > 3 {
                        assert_ne!(label, 3, "the duplicate of center 0 never wins");
                    }
                    let mut sorted = exact.clone();
                    sorted.sort_by(f64::total_cmp);
                    let expected_second = sorted.get(1).copied().unwrap_or(f64::INFINITY);
                    if expected_second.is_finite() {
                        assert!((second[r] as f64 - expected_second).abs() <= tol);
                    } else {
                        assert_eq!(second[r], f32::INFINITY);
                    }
                }
            }
        }
    }

    #[test]
    fn weighted_rows_match_the_scalar_order() {
        for (rows_n, points, d) in [
            (1usize, 1usize, 3usize),
            (5, 3, 40),
            (7, 8, 771),
            (3, 2, 64),
        ] {
            let rows: Vec<f32> = (0..rows_n * d)
                .map(|i| ((i as f64 * 0.37).sin() * 3.0) as f32)
                .collect();
            let coefs: Vec<f64> = (0..rows_n * points)
                .map(|i| (i as f64 * 0.91).cos())
                .collect();
            let start: Vec<f64> = (0..points * d).map(|i| (i as f64 * 0.13).sin()).collect();
            let mut scalar = start.clone();
            weighted_rows_scalar(&mut scalar, &coefs, &rows, d);
            let mut dispatched = start.clone();
            add_weighted_rows(&mut dispatched, &coefs, &rows, d);
            assert_eq!(scalar, dispatched, "{rows_n}x{points} d={d}");
        }
    }

    #[test]
    fn every_level_gives_identical_bits() {
        for d in [1usize, 3, 8, 15, 16, 17, 33, 64, 100, 768, 771] {
            let (a, b) = data(d, d as f64);
            let b64: Vec<f64> = b.iter().map(|&x| x as f64).collect();
            let scalar = sq_dist_scalar(&a, &b);
            assert_eq!(scalar, sq_dist_scalar(&a, &b64));
            let naive: f64 = a.iter().zip(&b64).map(|(x, y)| (x - y) * (x - y)).sum();
            assert!((scalar - naive).abs() <= 1e-12 * naive, "d={d}");
            let mut acc_s = vec![0.5; d];
            axpy_scalar(&mut acc_s, 0.3, &a, &b);
            #[cfg(target_arch = "x86_64")]
            unsafe {
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    assert_eq!(
                        dot_scalar(&a, &b).to_bits(),
                        x86::dot_avx2(&a, &b).to_bits(),
                        "dot avx2 d={d}"
                    );
                    assert_eq!(
                        scalar.to_bits(),
                        x86::sq_dist_avx2(&a, &b).to_bits(),
                        "avx2 d={d}"
                    );
                    let mut acc = vec![0.5; d];
                    x86::axpy_avx2(&mut acc, 0.3, &a, &b);
                    assert_eq!(acc, acc_s);
                }
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                    assert_eq!(
                        dot_scalar(&a, &b).to_bits(),
                        x86::dot_avx512(&a, &b).to_bits(),
                        "dot avx512 d={d}"
                    );
                    assert_eq!(
                        scalar.to_bits(),
                        x86::sq_dist_avx512(&a, &b).to_bits(),
                        "avx512 d={d}"
                    );
                    let mut acc = vec![0.5; d];
                    x86::axpy_avx512(&mut acc, 0.3, &a, &b);
                    assert_eq!(acc, acc_s);
                }
            }
        }
    }
}
