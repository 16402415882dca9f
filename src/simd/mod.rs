//! The SIMD kernels every hot loop is built on, with runtime CPU dispatch (no
//! `target-cpu=native` build). One generic source per kernel (kernels.rs) over a small trait of
//! logical vectors (isa.rs), compiled for each level:
//!
//! | level    | where                                 | vectors                      |
//! |----------|---------------------------------------|------------------------------|
//! | `avx512` | x86-64 with AVX-512F and FMA          | 512-bit, fused multiply-add  |
//! | `avx2`   | x86-64 with AVX2 and FMA              | 256-bit, fused multiply-add  |
//! | `neon`   | aarch64                               | 128-bit, fused multiply-add  |
//! | `scalar` | anything else, or `GIO_RS_NO_SIMD=1`  | lane arrays, separate × and + |
//!
//! The three fused levels give bit-identical results (kernels.rs says why); `scalar` rounds
//! each product before adding it, so its results can differ from theirs in the last bits.
//! `GIO_RS_NO_AVX512=1` skips AVX-512. The float32 center kernels (`nearest_centers_f32`,
//! `center_scores_f32`) give approximate scores that callers only use where a rigorous error
//! bound settles the answer (kmeans.rs and distance.rs re-check the rest exactly).

mod isa;
mod kernels;

use std::sync::OnceLock;

use crate::rows::Element;
use isa::{Isa, Portable};
use kernels::{LaneBest, PanelView, PANEL};

/// A dispatch level (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Avx512,
    Avx2,
    Neon,
    Scalar,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2",
            Level::Neon => "neon",
            Level::Scalar => "scalar",
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            Level::Neon => cfg!(target_arch = "aarch64"),
            Level::Scalar => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// The level in use, chosen once per process.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

fn detect() -> Level {
    if std::env::var_os("GIO_RS_NO_SIMD").is_some() {
        return Level::Scalar;
    }
    let no_avx512 = std::env::var_os("GIO_RS_NO_AVX512").is_some();
    [Level::Avx512, Level::Avx2, Level::Neon]
        .into_iter()
        .filter(|&l| !(no_avx512 && l == Level::Avx512))
        .find(|l| l.is_supported())
        .unwrap_or(Level::Scalar)
}

/// Every level this CPU can run, fastest first (for tests and benchmarks).
pub fn supported_levels() -> Vec<Level> {
    [Level::Avx512, Level::Avx2, Level::Neon, Level::Scalar]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// Name of the dispatch level in use ("avx512", "avx2", "neon" or "scalar"), for benchmarks and
/// bug reports.
pub fn level_name() -> &'static str {
    level().name()
}

/// A kernel call, run by `run` at the level in use.
trait Kernel {
    type Output;
    fn run<S: Isa>(self, s: S) -> Self::Output;
}

#[inline]
fn run<K: Kernel>(kernel: K) -> K::Output {
    run_at(level(), kernel)
}

/// Something that runs kernels: a `Level`, or (in tests) a level forced by other means.
trait Runner: Copy {
    fn go<K: Kernel>(self, kernel: K) -> K::Output;
}

impl Runner for Level {
    fn go<K: Kernel>(self, kernel: K) -> K::Output {
        run_at(self, kernel)
    }
}

/// Runs `kernel` compiled for `level`. Panics if this CPU cannot run it.
fn run_at<K: Kernel>(level: Level, kernel: K) -> K::Output {
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => {
            assert!(level.is_supported());
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked, and cached by std).
            unsafe { run_avx512(kernel) }
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => {
            assert!(level.is_supported());
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { run_avx2(kernel) }
        }
        Level::Neon => {
            assert!(level.is_supported());
            kernel.run(Portable::<true>)
        }
        _ => kernel.run(Portable::<false>),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run(isa::Avx512::new_unchecked())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run(isa::Avx2::new_unchecked())
}

/// Declares a kernel call: a struct of its arguments and a `Kernel` impl calling `$body` with
/// the level `s`. Everything in `$body` is inlined into the level's entry point.
macro_rules! kernel {
    ($name:ident <$($lt:lifetime),* $(; $($g:ident),*)?> { $($field:ident : $ty:ty),* $(,)? }
        -> $out:ty = |$s:ident| $body:expr) => {
        struct $name<$($lt,)* $($($g,)*)?> { $($field: $ty),* }
        impl<$($lt,)* $($($g: Element,)*)?> Kernel for $name<$($lt,)* $($($g,)*)?> {
            type Output = $out;
            #[inline(always)]
            fn run<S: Isa>(self, $s: S) -> $out {
                let $name { $($field),* } = self;
                $body
            }
        }
    };
}

kernel!(SqDist<'a; A, B> { a: &'a [A], b: &'a [B] } -> f64 = |s| kernels::sq_dist(s, a, b));
kernel!(Dot<'a; A, B> { a: &'a [A], b: &'a [B] } -> f64 = |s| kernels::dot(s, a, b));
kernel!(SqDists<'a; A, B> { v: &'a [A], rows: &'a [B], dim: usize, out: &'a mut [f64] } -> ()
    = |s| kernels::sq_dists(s, v, rows, dim, out));
kernel!(NearestUnused<'a; T> { v: &'a [f64], rows: &'a [T], dim: usize, used: &'a [bool] }
    -> Option<(usize, f64)> = |s| kernels::nearest_unused(s, v, rows, dim, used));
kernel!(ScaledDifference<'a; T> { acc: &'a mut [f64], c: f64, v: &'a [f64], x: &'a [T] } -> ()
    = |s| kernels::add_scaled_difference(s, acc, c, v, x));
kernel!(DotBlock<'a; A, B> { a: &'a [A], b: &'a [B], dim: usize, out: &'a mut [f64] } -> ()
    = |s| kernels::dot_block(s, a, b, dim, out));
kernel!(GramRows<'a> { left: &'a [f64], right: &'a [f64], m: usize, rows: (usize, usize),
    out: &'a mut [f64] } -> () = |s| kernels::gram_rows(s, left, right, m, rows, out));
kernel!(WeightedRows<'a; T> { acc: &'a mut [f64], coefs: &'a [f64], rows: &'a [T], dim: usize }
    -> () = |s| kernels::add_weighted_rows(s, acc, coefs, rows, dim));
kernel!(PanelDots<'a; T, B> { panels: &'a [T], points: &'a [B], dim: usize, out: &'a mut [f64] }
    -> () = |s| kernels::panel_dots(s, panels, points, dim, out));
kernel!(CenterRows<> {} -> usize = |_s| kernels::center_rows::<S>());
kernel!(NearestBlocks<'a> { blocks: &'a [f32], centers: PanelView<'a>, states: &'a mut [LaneBest] }
    -> () = |s| kernels::nearest_blocks(s, blocks, &centers, states));
kernel!(ScoreBlocks<'a> { blocks: &'a [f32], centers: PanelView<'a>, first: usize,
    out: &'a mut [f32] } -> () = |s| kernels::score_blocks(s, blocks, &centers, first, out));

/// ‖a − b‖², computed in f64 whatever the stored types.
#[inline]
pub fn sq_dist<A: Element, B: Element>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len());
    run(SqDist { a, b })
}

/// a·b in f64: element j to lane j mod 8 over the leading multiple of 8, then a scalar tail,
/// lanes summed in a fixed tree.
#[inline]
pub fn dot<A: Element, B: Element>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len());
    run(Dot { a, b })
}

/// `out[i] = sq_dist(v, rows[i])` for every row of `rows` (`dim` values each).
pub fn sq_dists<A: Element, B: Element>(v: &[A], rows: &[B], dim: usize, out: &mut [f64]) {
    assert!(v.len() == dim && rows.len() == out.len() * dim);
    run(SqDists { v, rows, dim, out })
}

/// The row of `rows` nearest to `v` (by `sq_dist`) among rows with `used[i] == false`, ties to
/// the lowest index, with its squared distance; `None` when every row is used.
pub fn nearest_unused<T: Element>(
    v: &[f64],
    rows: &[T],
    dim: usize,
    used: &[bool],
) -> Option<(usize, f64)> {
    assert!(v.len() == dim && rows.len() == used.len() * dim);
    run(NearestUnused { v, rows, dim, used })
}

/// `acc[j] += c · (v[j] − x[j])` (fused), the gradient's per-row update.
#[inline]
pub fn add_scaled_difference<T: Element>(acc: &mut [f64], c: f64, v: &[f64], x: &[T]) {
    assert!(acc.len() == v.len() && v.len() == x.len());
    run(ScaledDifference { acc, c, v, x })
}

/// `out[r * b_rows + c] = a_r · b_c` for every row r of `a` and c of `b` (row-major, `dim`
/// columns each), each value bit-identical to `dot(a_r, b_c)`. Register tiles share their loads.
pub fn dot_block<A: Element, B: Element>(a: &[A], b: &[B], dim: usize, out: &mut [f64]) {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    assert!(a.len() == na * dim && b.len() == nb * dim && out.len() == na * nb);
    run(DotBlock { a, b, dim, out })
}

/// `acc[p][j] += coefs[r][p] · rows[r][j]` for every row r in order and point p (`acc` is
/// points × dim, `coefs` rows × points, row-major), fused: the transposed product Xᵀ·C.
pub fn add_weighted_rows<T: Element>(acc: &mut [f64], coefs: &[f64], rows: &[T], dim: usize) {
    let points = acc.len() / dim;
    let n_rows = rows.len() / dim;
    assert!(
        acc.len() == points * dim && rows.len() == n_rows * dim && coefs.len() == n_rows * points
    );
    run(WeightedRows {
        acc,
        coefs,
        rows,
        dim,
    })
}

/// Columns per panel of the operands `gram_rows` reads.
pub const GRAM_PANEL: usize = kernels::GRAM_PANEL;

/// Rows `i0..i1` (multiples of 8) of Lᵀ·R for two blocks of m rows packed in column panels
/// (panel q holds columns 8q..8q+8 of every row, `m × 8` row-major; both the same shape):
/// `out[(i − i0) * w + j − j0] = Σ_r L[r][i] · R[r][j]` for j from j0 = 8·⌊i/8⌋ on, with
/// w = panels·8 − i0; columns before j0 are left as they are. Each value is one chain of
/// multiply-adds over r in order (fused on every level but x86-64's scalar one), so the same for
/// any row range, tile shape or fused level.
pub fn gram_rows(left: &[f64], right: &[f64], m: usize, rows: (usize, usize), out: &mut [f64]) {
    run(GramRows {
        left,
        right,
        m,
        rows,
        out,
    })
}

/// Rows packed for `RowPanels::dots`: panels of 8 rows, each transposed (dim × 8) and
/// contiguous, in the rows' own float type (no more memory than the rows); the last panel
/// zero-padded. Built once per target: every descent step streams it.
pub struct RowPanels<T> {
    data: Vec<T>,
    rows: usize,
    dim: usize,
}

/// Rows per panel of `RowPanels`.
pub const ROW_PANEL: usize = kernels::ROW_PANEL;

impl<T: Element> RowPanels<T> {
    pub fn new(rows: &[T], dim: usize) -> Self {
        RowPanels {
            data: kernels::pack_row_panels(rows, dim),
            rows: rows.len() / dim,
            dim,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// `out[(r − start) * points + p]` = row r · point p for rows `start..end` (`start` a
    /// multiple of 8; rows past the last real one come out 0), each one chain of fused
    /// multiply-adds over the columns in order: the same value whatever the range or the number
    /// of points. `out` holds `(end − start).div_ceil(8) * 8 * points` values.
    pub fn dots<B: Element>(&self, start: usize, end: usize, points: &[B], out: &mut [f64]) {
        assert!(start.is_multiple_of(ROW_PANEL) && start <= end && end <= self.rows);
        let (p0, p1) = (start / ROW_PANEL, end.div_ceil(ROW_PANEL));
        let panels = &self.data[p0 * self.dim * ROW_PANEL..p1 * self.dim * ROW_PANEL];
        run(PanelDots {
            panels,
            points,
            dim: self.dim,
            out,
        })
    }
}

/// Centers packed for `nearest_centers_f32` and `center_scores_f32`: in panels of 16 centers,
/// each panel transposed (dim × 16) and contiguous, so a tile streams one panel; padded with
/// +inf norms. The same layout on every level.
pub struct PackedCenters {
    /// `data[(c / 16) * dim * 16 + j * 16 + c % 16]` = center c's value j.
    data: Vec<f32>,
    norms: Vec<f32>,
    padded: usize,
    dim: usize,
}

/// Centers `nearest_centers_f32` can tell apart: it carries their indices in float32 lanes.
pub const MAX_PACKED_CENTERS: usize = 1 << 24;

impl PackedCenters {
    /// Packs K × dim centers (row-major, float32 or float64) in float32.
    pub fn new<T: Element>(centers: &[T], dim: usize) -> Self {
        let k = centers.len() / dim;
        let padded = k.div_ceil(PANEL) * PANEL;
        let mut data = vec![0.0f32; dim * padded];
        let mut norms = vec![f32::INFINITY; padded];
        for (c, row) in centers.chunks_exact(dim).enumerate() {
            let panel = &mut data[(c / PANEL) * dim * PANEL..];
            for (j, &v) in row.iter().enumerate() {
                panel[j * PANEL + c % PANEL] = v.to_f64() as f32;
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
        }
    }

    /// Centers including the padding (a multiple of 16).
    pub fn padded_len(&self) -> usize {
        self.padded
    }

    fn view(&self) -> PanelView<'_> {
        PanelView {
            data: &self.data,
            norms: &self.norms,
            padded: self.padded,
            dim: self.dim,
        }
    }
}

/// Rows of `rows` in blocks of `r` (the last one zero-padded), rounded to float32.
fn row_blocks<T: Element>(rows: &[T], dim: usize, r: usize) -> Vec<f32> {
    let n_blocks = (rows.len() / dim).div_ceil(r);
    let mut blocks = vec![0.0f32; n_blocks * r * dim];
    for (b, &v) in blocks.iter_mut().zip(rows) {
        *b = v.to_f64() as f32;
    }
    blocks
}

/// For every row of `rows` (float32 or float64, row-major, rounded to float32): the index of the
/// nearest packed center by the float32 Gram form ‖c‖² − 2x·c (‖x‖² does not change the argmin),
/// ties to the lowest index, in `best`; its score in `best_score`; in `second` the lowest score
/// over all other centers. A GEMM-style micro-kernel: a tile of rows × 16 or 32 centers,
/// broadcasts of x against center vectors, no horizontal sums; every score is one chain of
/// multiply-adds over the columns in order, so the results are the same on every fused level.
/// The scores are float32 approximations: callers must allow for their rounding (see kmeans.rs).
/// Panics with more than `MAX_PACKED_CENTERS` centers.
pub fn nearest_centers_f32<T: Element>(
    rows: &[T],
    centers: &PackedCenters,
    best: &mut [u32],
    best_score: &mut [f32],
    second: &mut [f32],
) {
    nearest_centers_at(level(), rows, centers, best, best_score, second)
}

fn nearest_centers_at<T: Element>(
    level: impl Runner,
    rows: &[T],
    centers: &PackedCenters,
    best: &mut [u32],
    best_score: &mut [f32],
    second: &mut [f32],
) {
    let dim = centers.dim;
    let n = best.len();
    assert!(rows.len() == n * dim && best_score.len() == n && second.len() == n);
    assert!(centers.padded <= MAX_PACKED_CENTERS);
    let block_rows = level.go(CenterRows {});
    let blocks = row_blocks(rows, dim, block_rows);
    let mut states = vec![LaneBest::EMPTY; n.div_ceil(block_rows) * block_rows];
    level.go(NearestBlocks {
        blocks: &blocks,
        centers: centers.view(),
        states: &mut states,
    });
    for (((o, bs), sec), state) in best
        .iter_mut()
        .zip(best_score.iter_mut())
        .zip(second.iter_mut())
        .zip(&states)
    {
        // The lowest score, and among equal scores the lowest center index.
        let lane = (0..PANEL)
            .min_by(|&a, &b| {
                state.best[a]
                    .total_cmp(&state.best[b])
                    .then(state.index[a].total_cmp(&state.index[b]))
            })
            .expect("at least one lane");
        *o = state.index[lane] as u32;
        *bs = state.best[lane];
        // Second: every lane's runner-up and every other lane's best.
        let others = (0..PANEL).filter(|&l| l != lane).map(|l| state.best[l]);
        *sec = state
            .second
            .iter()
            .copied()
            .chain(others)
            .fold(f32::INFINITY, f32::min);
    }
}

/// The float32 scores ‖c‖² − 2x·c of every row of `rows` (float32 or float64, rounded to
/// float32) against every packed center, row-major in `out` (rows × `padded_len()`; padding
/// columns get +inf). The same micro-kernels as `nearest_centers_f32`, storing every score.
pub fn center_scores_f32<T: Element>(rows: &[T], centers: &PackedCenters, out: &mut [f32]) {
    center_scores_at(level(), rows, centers, 0, out)
}

/// `center_scores_f32` against the centers from `first` (a multiple of 16) on only: the columns
/// before it are left as they are (for symmetric problems, whose other half is a transpose).
pub fn center_scores_from_f32<T: Element>(
    rows: &[T],
    centers: &PackedCenters,
    first: usize,
    out: &mut [f32],
) {
    center_scores_at(level(), rows, centers, first, out)
}

fn center_scores_at<T: Element>(
    level: impl Runner,
    rows: &[T],
    centers: &PackedCenters,
    first: usize,
    out: &mut [f32],
) {
    let dim = centers.dim;
    let n = rows.len() / dim;
    assert!(rows.len() == n * dim && out.len() == n * centers.padded);
    assert!(first.is_multiple_of(PANEL) && first <= centers.padded);
    let blocks = row_blocks(rows, dim, level.go(CenterRows {}));
    level.go(ScoreBlocks {
        blocks: &blocks,
        centers: centers.view(),
        first,
        out,
    })
}

#[cfg(test)]
mod tests;
