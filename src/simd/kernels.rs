//! Every hot kernel, written once over `Isa` (isa.rs) and compiled for each dispatch level.
//!
//! Results do not depend on the level's register width: a reduction runs on a fixed number of
//! logical lanes (32 for `sq_dist`, 8 for `dot`) summed in one fixed tree, and the tile kernels
//! give every output its own lane whose sum runs in a fixed order. With fused multiply-adds
//! (AVX-512, AVX2, NEON) every level computes the same operations in the same order, so the
//! same bits; the portable level on x86-64 rounds each product separately (see isa.rs).
//!
//! Everything here is `#[inline(always)]`: a kernel is inlined into its level's
//! `#[target_feature]` entry point (mod.rs), which is what makes it vector code.

use super::isa::Isa;
use crate::rows::{Element, Precision};

/// f64 lanes of `sq_dist`'s reduction (4 independent chains of 8).
const LANES: usize = 32;

/// Loads 8 stored values as f64. SAFETY: `p` points to 8 readable values.
#[inline(always)]
unsafe fn load8<S: Isa, T: Element>(s: S, p: *const T) -> S::V8 {
    match T::PRECISION {
        Precision::F64 => s.load(p as *const f64),
        Precision::F32 => s.load_f32(p as *const f32),
    }
}

/// The fixed summation tree of 8 lanes: (l, l+4), then (l, l+2), then (0, 1).
#[inline(always)]
fn sum8(lanes: [f64; 8]) -> f64 {
    let mut lanes = lanes;
    let mut width = 8;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

/// ‖a − b‖² in f64: lanes j mod 32 over the leading multiple of 32, lanes 0..8 over the next
/// multiples of 8, a scalar tail; the 32 lanes summed as (l, l+16), (l, l+8), then `sum8`.
#[inline(always)]
pub(super) fn sq_dist<S: Isa, A: Element, B: Element>(s: S, a: &[A], b: &[B]) -> f64 {
    let len = a.len().min(b.len());
    let wide = len / LANES * LANES;
    let narrow = wide + (len - wide) / 8 * 8;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [s.zero(); 4];
    let mut j = 0;
    while j < wide {
        for (q, acc) in acc.iter_mut().enumerate() {
            // SAFETY: j + 8q + 8 <= wide <= len.
            let t = unsafe { s.sub(load8(s, pa.add(j + 8 * q)), load8(s, pb.add(j + 8 * q))) };
            *acc = s.mul_add(t, t, *acc);
        }
        j += LANES;
    }
    while j < narrow {
        // SAFETY: j + 8 <= narrow <= len.
        let t = unsafe { s.sub(load8(s, pa.add(j)), load8(s, pb.add(j))) };
        acc[0] = s.mul_add(t, t, acc[0]);
        j += 8;
    }
    let mut tail = 0.0f64;
    for (x, y) in a[narrow..len].iter().zip(&b[narrow..len]) {
        let t = x.to_f64() - y.to_f64();
        tail = s.mul_add_f64(t, t, tail);
    }
    let halves = [s.add(acc[0], acc[2]), s.add(acc[1], acc[3])];
    sum8(s.lanes(s.add(halves[0], halves[1]))) + tail
}

/// a·b in f64: element j to lane j mod 8 over the leading multiple of 8, then a scalar tail.
#[inline(always)]
pub(super) fn dot<S: Isa, A: Element, B: Element>(s: S, a: &[A], b: &[B]) -> f64 {
    let [value] = dot_tile::<S, A, B, 1, 1>(s, [a.as_ptr()], [b.as_ptr()], a.len().min(b.len()));
    value[0]
}

/// The dots of R rows of `a` with C rows of `b` (`dim` values each), each one bit-identical to
/// `dot` of that pair: an R×C register tile that shares every load between R or C products.
/// SAFETY: every pointer points to `dim` readable values.
#[inline(always)]
unsafe fn dot_tile_raw<S: Isa, A: Element, B: Element, const R: usize, const C: usize>(
    s: S,
    a: [*const A; R],
    b: [*const B; C],
    dim: usize,
) -> [[f64; C]; R] {
    let full = dim / 8 * 8;
    let mut acc = [[s.zero(); C]; R];
    let mut j = 0;
    while j < full {
        let bv: [S::V8; C] = std::array::from_fn(|c| load8(s, b[c].add(j)));
        for (acc_r, &a_r) in acc.iter_mut().zip(&a) {
            let av = load8(s, a_r.add(j));
            for (acc_rc, &b_c) in acc_r.iter_mut().zip(&bv) {
                *acc_rc = s.mul_add(av, b_c, *acc_rc);
            }
        }
        j += 8;
    }
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            let mut tail = 0.0f64;
            for j in full..dim {
                tail = s.mul_add_f64((*a[r].add(j)).to_f64(), (*b[c].add(j)).to_f64(), tail);
            }
            sum8(s.lanes(acc[r][c])) + tail
        })
    })
}

#[inline(always)]
fn dot_tile<S: Isa, A: Element, B: Element, const R: usize, const C: usize>(
    s: S,
    a: [*const A; R],
    b: [*const B; C],
    dim: usize,
) -> [[f64; C]; R] {
    // SAFETY: callers pass pointers into slices holding `dim` values from each pointer.
    unsafe { dot_tile_raw::<S, A, B, R, C>(s, a, b, dim) }
}

/// `out[r * nb + c] = dot(a_r, b_c)` for every row r of `a` and c of `b`.
#[inline(always)]
pub(super) fn dot_block<S: Isa, A: Element, B: Element>(
    s: S,
    a: &[A],
    b: &[B],
    dim: usize,
    out: &mut [f64],
) {
    match S::DOT_TILE {
        (4, 4) => dot_block_tiled::<S, A, B, 4, 4>(s, a, b, dim, out),
        (2, 2) => dot_block_tiled::<S, A, B, 2, 2>(s, a, b, dim, out),
        _ => dot_block_tiled::<S, A, B, 2, 1>(s, a, b, dim, out),
    }
}

#[inline(always)]
fn dot_block_tiled<S: Isa, A: Element, B: Element, const R: usize, const C: usize>(
    s: S,
    a: &[A],
    b: &[B],
    dim: usize,
    out: &mut [f64],
) {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    assert!(a.len() == na * dim && b.len() == nb * dim && out.len() == na * nb);
    let (ta, tb) = (na / R * R, nb / C * C);
    let row_a = |r: usize| a[r * dim..].as_ptr();
    let row_b = |c: usize| b[c * dim..].as_ptr();
    let mut r = 0;
    while r < na {
        // Full tiles of R rows, then single rows.
        if r < ta {
            let pa: [*const A; R] = std::array::from_fn(|p| row_a(r + p));
            let mut c = 0;
            while c < tb {
                let pb: [*const B; C] = std::array::from_fn(|q| row_b(c + q));
                let tile = dot_tile::<S, A, B, R, C>(s, pa, pb, dim);
                for (p, tile_row) in tile.iter().enumerate() {
                    out[(r + p) * nb + c..(r + p) * nb + c + C].copy_from_slice(tile_row);
                }
                c += C;
            }
            for c in tb..nb {
                let tile = dot_tile::<S, A, B, R, 1>(s, pa, [row_b(c)], dim);
                for (p, tile_row) in tile.iter().enumerate() {
                    out[(r + p) * nb + c] = tile_row[0];
                }
            }
            r += R;
        } else {
            let mut c = 0;
            while c < tb {
                let pb: [*const B; C] = std::array::from_fn(|q| row_b(c + q));
                let [tile_row] = dot_tile::<S, A, B, 1, C>(s, [row_a(r)], pb, dim);
                out[r * nb + c..r * nb + c + C].copy_from_slice(&tile_row);
                c += C;
            }
            for c in tb..nb {
                out[r * nb + c] = dot_tile::<S, A, B, 1, 1>(s, [row_a(r)], [row_b(c)], dim)[0][0];
            }
            r += 1;
        }
    }
}

/// `acc[j] += c · (v[j] − x[j])` for every j.
#[inline(always)]
pub(super) fn add_scaled_difference<S: Isa, T: Element>(
    s: S,
    acc: &mut [f64],
    c: f64,
    v: &[f64],
    x: &[T],
) {
    let len = acc.len().min(v.len()).min(x.len());
    let full = len / 8 * 8;
    let cv = s.splat(c);
    let (pa, pv, px) = (acc.as_mut_ptr(), v.as_ptr(), x.as_ptr());
    let mut j = 0;
    while j < full {
        // SAFETY: j + 8 <= full <= every length.
        unsafe {
            let t = s.sub(s.load(pv.add(j)), load8(s, px.add(j)));
            s.store(pa.add(j), s.mul_add(cv, t, s.load(pa.add(j))));
        }
        j += 8;
    }
    for j in full..len {
        acc[j] = s.mul_add_f64(c, v[j] - x[j].to_f64(), acc[j]);
    }
}

/// `acc[p][j] += Σ_r coefs[r][p] · rows[r][j]` (acc points × dim, coefs rows × points, rows
/// rows × dim, all row-major): the transposed product Xᵀ·C. Every element is one chain of fused
/// multiply-adds over r in order, so tiling changes nothing in the result.
#[inline(always)]
pub(super) fn add_weighted_rows<S: Isa, T: Element>(
    s: S,
    acc: &mut [f64],
    coefs: &[f64],
    rows: &[T],
    dim: usize,
) {
    let points = acc.len() / dim;
    let n_rows = rows.len() / dim;
    assert!(
        acc.len() == points * dim && rows.len() == n_rows * dim && coefs.len() == n_rows * points
    );
    let [j8, j4, j2, j1] = S::WEIGHTED_COLUMNS;
    let mut p = 0;
    while p < points {
        let (take, columns) = match (points - p).min(S::WEIGHTED_POINTS) {
            1 => (1, j1),
            2 | 3 => (2, j2),
            4..=7 => (4, j4),
            _ => (8, j8),
        };
        // SAFETY: points p..p+take exist.
        unsafe {
            match (take, columns) {
                (8, 3) => weighted_columns::<S, T, 8, 3>(s, acc, coefs, rows, dim, p),
                (4, 1) => weighted_columns::<S, T, 4, 1>(s, acc, coefs, rows, dim, p),
                (4, 2) => weighted_columns::<S, T, 4, 2>(s, acc, coefs, rows, dim, p),
                (2, 1) => weighted_columns::<S, T, 2, 1>(s, acc, coefs, rows, dim, p),
                (2, 2) => weighted_columns::<S, T, 2, 2>(s, acc, coefs, rows, dim, p),
                (2, 4) => weighted_columns::<S, T, 2, 4>(s, acc, coefs, rows, dim, p),
                (1, 2) => weighted_columns::<S, T, 1, 2>(s, acc, coefs, rows, dim, p),
                (1, 4) => weighted_columns::<S, T, 1, 4>(s, acc, coefs, rows, dim, p),
                (1, 8) => weighted_columns::<S, T, 1, 8>(s, acc, coefs, rows, dim, p),
                (t, _) => {
                    for q in p..p + t {
                        weighted_columns::<S, T, 1, 1>(s, acc, coefs, rows, dim, q)
                    }
                }
            }
        }
        p += take;
    }
}

/// Points p..p+P of `add_weighted_rows`: columns in tiles of 8J, then of 8, then one at a time.
/// SAFETY: p + P <= points.
#[inline(always)]
unsafe fn weighted_columns<S: Isa, T: Element, const P: usize, const J: usize>(
    s: S,
    acc: &mut [f64],
    coefs: &[f64],
    rows: &[T],
    dim: usize,
    p: usize,
) {
    let points = acc.len() / dim;
    let n_rows = rows.len() / dim;
    let wide = dim / (8 * J) * (8 * J);
    let full = dim / 8 * 8;
    let mut j = 0;
    while j < wide {
        weighted_tile::<S, T, P, J>(s, acc, coefs, rows, dim, points, p, j);
        j += 8 * J;
    }
    while j < full {
        weighted_tile::<S, T, P, 1>(s, acc, coefs, rows, dim, points, p, j);
        j += 8;
    }
    for q in p..p + P {
        for r in 0..n_rows {
            let c = coefs[r * points + q];
            for jj in full..dim {
                let a = &mut acc[q * dim + jj];
                *a = s.mul_add_f64(c, rows[r * dim + jj].to_f64(), *a);
            }
        }
    }
}

/// Points p0..p0+P, columns j0..j0+8J of `add_weighted_rows`, over every row.
/// SAFETY: p0 + P <= points and j0 + 8J <= dim for the shapes of `add_weighted_rows`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn weighted_tile<S: Isa, T: Element, const P: usize, const J: usize>(
    s: S,
    acc: &mut [f64],
    coefs: &[f64],
    rows: &[T],
    dim: usize,
    points: usize,
    p0: usize,
    j0: usize,
) {
    let pa = acc.as_mut_ptr();
    let mut tile: [[S::V8; J]; P] = std::array::from_fn(|p| {
        std::array::from_fn(|q| s.load(pa.add((p0 + p) * dim + j0 + 8 * q)))
    });
    let (pr, pc) = (rows.as_ptr(), coefs.as_ptr());
    for r in 0..rows.len() / dim {
        let x: [S::V8; J] = std::array::from_fn(|q| load8(s, pr.add(r * dim + j0 + 8 * q)));
        for (p, tile_p) in tile.iter_mut().enumerate() {
            let c = s.splat(*pc.add(r * points + p0 + p));
            for (t, &xq) in tile_p.iter_mut().zip(&x) {
                *t = s.mul_add(c, xq, *t);
            }
        }
    }
    for (p, tile_p) in tile.iter().enumerate() {
        for (q, &t) in tile_p.iter().enumerate() {
            s.store(pa.add((p0 + p) * dim + j0 + 8 * q), t);
        }
    }
}

/// Center panels are 16 wide on every level (one `W16`).
pub(super) const PANEL: usize = 16;
/// The largest center tile any level uses: rows, and centers (panels × 16).
const MAX_TILE_ROWS: usize = 8;
const MAX_TILE_CENTERS: usize = 3 * PANEL;

/// The dots of R rows of `block` (row-major, `dim` each) with the NP panels of 16 packed centers
/// starting at `panel` (each `dim × 16`, transposed): lane l of output (r, q) is one chain of
/// fused multiply-adds over j in order, whatever the tile shape.
/// SAFETY: `block` holds R rows; `panel` NP panels.
#[inline(always)]
unsafe fn center_dots<S: Isa, const R: usize, const NP: usize>(
    s: S,
    block: *const f32,
    panel: *const f32,
    dim: usize,
) -> [[S::W16; NP]; R] {
    let mut acc = [[s.zero_w(); NP]; R];
    for j in 0..dim {
        let c: [S::W16; NP] =
            std::array::from_fn(|q| s.load_w(panel.add(q * dim * PANEL + j * PANEL)));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let x = s.splat_w(*block.add(r * dim + j));
            for (a, &cq) in acc_r.iter_mut().zip(&c) {
                *a = s.mul_add_w(x, cq, *a);
            }
        }
    }
    acc
}

/// The packed centers as the center kernels read them.
pub(super) struct PanelView<'a> {
    pub data: &'a [f32],
    pub norms: &'a [f32],
    pub padded: usize,
    pub dim: usize,
}

/// Scores ‖c‖² − 2x·c of the R rows of `block` against NP panels from center `c0`, into
/// `out[r][16q + l]`. SAFETY: `block` holds R rows; c0 + 16·NP <= padded.
#[inline(always)]
unsafe fn score_tile<S: Isa, const R: usize, const NP: usize>(
    s: S,
    block: &[f32],
    centers: &PanelView<'_>,
    c0: usize,
    out: &mut [[f32; MAX_TILE_CENTERS]; MAX_TILE_ROWS],
) {
    let dim = centers.dim;
    let acc = center_dots::<S, R, NP>(s, block.as_ptr(), centers.data.as_ptr().add(c0 * dim), dim);
    let minus_two = s.splat_w(-2.0);
    for (acc_r, out_r) in acc.iter().zip(out.iter_mut()) {
        for (q, &d) in acc_r.iter().enumerate() {
            let norms = s.load_w(centers.norms.as_ptr().add(c0 + PANEL * q));
            s.store_w(
                out_r.as_mut_ptr().add(PANEL * q),
                s.mul_add_w(minus_two, d, norms),
            );
        }
    }
}

/// One row's running nearest-center state: per lane (each sees a fixed subset of the centers,
/// in increasing order; see `Isa::track_min_w`), the best score, its center (as f32: exact
/// below 2^24 centers) and the lane's runner-up score.
#[derive(Clone, Copy)]
pub(super) struct LaneBest {
    pub best: [f32; PANEL],
    pub index: [f32; PANEL],
    pub second: [f32; PANEL],
}

impl LaneBest {
    pub const EMPTY: LaneBest = LaneBest {
        best: [f32::INFINITY; PANEL],
        index: [0.0; PANEL],
        second: [f32::INFINITY; PANEL],
    };
}

/// Updates the states of the R rows of `block` with NP panels from center `c0`.
/// SAFETY: `block` holds R rows, `states` R states; c0 + 16·NP <= padded.
#[inline(always)]
unsafe fn nearest_tile<S: Isa, const R: usize, const NP: usize>(
    s: S,
    block: &[f32],
    centers: &PanelView<'_>,
    c0: usize,
    states: &mut [LaneBest],
) {
    let dim = centers.dim;
    let acc = center_dots::<S, R, NP>(s, block.as_ptr(), centers.data.as_ptr().add(c0 * dim), dim);
    let minus_two = s.splat_w(-2.0);
    let one = s.splat_w(1.0);
    let lane_ids: [f32; PANEL] = std::array::from_fn(|l| l as f32);
    let lane_ids = s.load_w(lane_ids.as_ptr());
    // Per panel: the centers' norms and indices (exact in f32 below 2^24), shared by the rows.
    let norms: [S::W16; NP] =
        std::array::from_fn(|q| s.load_w(centers.norms.as_ptr().add(c0 + PANEL * q)));
    let ids: [S::W16; NP] =
        std::array::from_fn(|q| s.mul_add_w(one, lane_ids, s.splat_w((c0 + PANEL * q) as f32)));
    for (acc_r, state) in acc.iter().zip(states.iter_mut()) {
        for ((&d, &norm), &id) in acc_r.iter().zip(&norms).zip(&ids) {
            let cand = s.mul_add_w(minus_two, d, norm);
            s.track_min_w(
                cand,
                id,
                state.best.as_mut_ptr(),
                state.index.as_mut_ptr(),
                state.second.as_mut_ptr(),
            );
        }
    }
}

/// Rows per block of the center kernels on this level.
#[inline(always)]
pub(super) fn center_rows<S: Isa>() -> usize {
    S::CENTER_TILE.0
}

/// Runs the nearest-center tiles over every block of `rows_per_block()` rows (zero-padded, f32)
/// and every panel, panels outer so each is read once per call.
#[inline(always)]
pub(super) fn nearest_blocks<S: Isa>(
    s: S,
    blocks: &[f32],
    centers: &PanelView<'_>,
    states: &mut [LaneBest],
) {
    match S::CENTER_TILE {
        (8, 3) => nearest_blocks_tiled::<S, 8, 3>(s, blocks, centers, states),
        (6, 1) => nearest_blocks_tiled::<S, 6, 1>(s, blocks, centers, states),
        (3, 1) => nearest_blocks_tiled::<S, 3, 1>(s, blocks, centers, states),
        _ => nearest_blocks_tiled::<S, 2, 1>(s, blocks, centers, states),
    }
}

#[inline(always)]
fn nearest_blocks_tiled<S: Isa, const R: usize, const NP: usize>(
    s: S,
    blocks: &[f32],
    centers: &PanelView<'_>,
    states: &mut [LaneBest],
) {
    let dim = centers.dim;
    assert!(blocks.len() == states.len() * dim && states.len().is_multiple_of(R));
    let mut c0 = 0;
    while c0 < centers.padded {
        let wide = c0 + PANEL * NP <= centers.padded;
        for (block, st) in blocks.chunks_exact(R * dim).zip(states.chunks_exact_mut(R)) {
            // SAFETY: each block holds R rows and R states; the panels exist (checked above).
            unsafe {
                if wide {
                    nearest_tile::<S, R, NP>(s, block, centers, c0, st)
                } else {
                    nearest_tile::<S, R, 1>(s, block, centers, c0, st)
                }
            }
        }
        c0 += if wide { PANEL * NP } else { PANEL };
    }
}

/// Every score of every block row against every center from `first` (a multiple of 16) on, into
/// `out` (block rows × padded; the columns before `first` are left as they are).
#[inline(always)]
pub(super) fn score_blocks<S: Isa>(
    s: S,
    blocks: &[f32],
    centers: &PanelView<'_>,
    first: usize,
    out: &mut [f32],
) {
    match S::CENTER_TILE {
        (8, 3) => score_blocks_tiled::<S, 8, 3>(s, blocks, centers, first, out),
        (6, 1) => score_blocks_tiled::<S, 6, 1>(s, blocks, centers, first, out),
        (3, 1) => score_blocks_tiled::<S, 3, 1>(s, blocks, centers, first, out),
        _ => score_blocks_tiled::<S, 2, 1>(s, blocks, centers, first, out),
    }
}

#[inline(always)]
fn score_blocks_tiled<S: Isa, const R: usize, const NP: usize>(
    s: S,
    blocks: &[f32],
    centers: &PanelView<'_>,
    first: usize,
    out: &mut [f32],
) {
    let (dim, padded) = (centers.dim, centers.padded);
    let n = out.len() / padded;
    assert!(out.len() == n * padded && blocks.len() == n.div_ceil(R) * R * dim);
    assert!(first.is_multiple_of(PANEL) && first <= padded);
    let mut scores = [[0.0f32; MAX_TILE_CENTERS]; MAX_TILE_ROWS];
    let mut c0 = first;
    while c0 < padded {
        let np = if c0 + PANEL * NP <= padded { NP } else { 1 };
        for (b, block) in blocks.chunks_exact(R * dim).enumerate() {
            // SAFETY: the block holds R rows; the panels exist (checked above).
            unsafe {
                if np == NP {
                    score_tile::<S, R, NP>(s, block, centers, c0, &mut scores)
                } else {
                    score_tile::<S, R, 1>(s, block, centers, c0, &mut scores)
                }
            }
            for (r, tile_row) in scores.iter().enumerate().take(R.min(n - b * R)) {
                let at = (b * R + r) * padded + c0;
                out[at..at + PANEL * np].copy_from_slice(&tile_row[..PANEL * np]);
            }
        }
        c0 += PANEL * np;
    }
}

/// Squared distances from `v` to every row of `rows` (`dim` each), by `sq_dist`.
#[inline(always)]
pub(super) fn sq_dists<S: Isa, A: Element, B: Element>(
    s: S,
    v: &[A],
    rows: &[B],
    dim: usize,
    out: &mut [f64],
) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = sq_dist(s, v, row);
    }
}

/// The row of `rows` nearest to `v` among those with `used[i] == false` (ties to the lowest
/// index), with its squared distance.
#[inline(always)]
pub(super) fn nearest_unused<S: Isa, T: Element>(
    s: S,
    v: &[f64],
    rows: &[T],
    dim: usize,
    used: &[bool],
) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, (row, &is_used)) in rows.chunks_exact(dim).zip(used).enumerate() {
        if is_used {
            continue;
        }
        let d = sq_dist(s, v, row);
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best
}

/// Rows per panel of `panel_dots`' packed rows (one `V8`).
pub(super) const ROW_PANEL: usize = 8;

/// `out[r * points + p]` = the dot of packed row r (panels of 8 rows, each `dim × 8`,
/// transposed) with row p of `points` (row-major): one chain of fused multiply-adds over j in
/// order per output, in lane r mod 8, so the value does not depend on the tile shape, on how
/// many points are computed together, or on the level (when fused).
#[inline(always)]
pub(super) fn panel_dots<S: Isa, T: Element, B: Element>(
    s: S,
    panels: &[T],
    points: &[B],
    dim: usize,
    out: &mut [f64],
) {
    match S::PANEL_TILE {
        (2, 8) => panel_dots_tiled::<S, T, B, 2, 8>(s, panels, points, dim, out),
        (1, 5) => panel_dots_tiled::<S, T, B, 1, 5>(s, panels, points, dim, out),
        _ => panel_dots_tiled::<S, T, B, 1, 2>(s, panels, points, dim, out),
    }
}

#[inline(always)]
fn panel_dots_tiled<S: Isa, T: Element, B: Element, const NR: usize, const C: usize>(
    s: S,
    panels: &[T],
    points: &[B],
    dim: usize,
    out: &mut [f64],
) {
    let n_panels = panels.len() / (dim * ROW_PANEL);
    let n_points = points.len() / dim;
    assert!(
        panels.len() == n_panels * dim * ROW_PANEL
            && points.len() == n_points * dim
            && out.len() == n_panels * ROW_PANEL * n_points
    );
    let full_points = n_points / C * C;
    let mut g = 0;
    while g < n_panels {
        // Groups of NR panels against C points; the leftover points one at a time, on NR1
        // panels where that many remain.
        let nr = if g + NR <= n_panels { NR } else { 1 };
        let mut p = 0;
        while p < full_points {
            // SAFETY: panels g..g+nr and points p..p+C exist (checked above).
            unsafe {
                if nr == NR {
                    panel_tile::<S, T, B, NR, C>(s, panels, points, dim, n_points, g, p, out)
                } else {
                    panel_tile::<S, T, B, 1, C>(s, panels, points, dim, n_points, g, p, out)
                }
            }
            p += C;
        }
        g += nr;
    }
    // The leftover points (fewer than C) together, on the level's number of panels for them.
    let rem = n_points - full_points;
    if rem > 0 {
        let nr = S::PANEL_REMAINDER[rem.min(7)].max(1);
        let mut g = 0;
        while g < n_panels {
            let take = if g + nr <= n_panels { nr } else { 1 };
            // SAFETY: panels g..g+take and points full_points..n_points exist.
            unsafe {
                remainder_tile::<S, T, B>(
                    s,
                    panels,
                    points,
                    dim,
                    n_points,
                    g,
                    full_points,
                    rem,
                    take,
                    out,
                )
            };
            g += take;
        }
    }
}

/// `panel_tile` for `rem` points and `nr` panels chosen at run time, dispatched to the shapes
/// the levels use (any other shape runs as single panels and points).
/// SAFETY: as `panel_tile`, for the panels g..g+nr and points p0..p0+rem.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn remainder_tile<S: Isa, T: Element, B: Element>(
    s: S,
    panels: &[T],
    points: &[B],
    dim: usize,
    n_points: usize,
    g: usize,
    p0: usize,
    rem: usize,
    nr: usize,
    out: &mut [f64],
) {
    macro_rules! tile {
        ($nr:literal, $c:literal) => {
            panel_tile::<S, T, B, $nr, $c>(s, panels, points, dim, n_points, g, p0, out)
        };
    }
    match (nr, rem) {
        (8, 1) => tile!(8, 1),
        (4, 1) => tile!(4, 1),
        (4, 2) => tile!(4, 2),
        (3, 3) => tile!(3, 3),
        (2, 1) => tile!(2, 1),
        (2, 2) => tile!(2, 2),
        (2, 3) => tile!(2, 3),
        (2, 4) => tile!(2, 4),
        (2, 5) => tile!(2, 5),
        (2, 6) => tile!(2, 6),
        (2, 7) => tile!(2, 7),
        (1, 1) => tile!(1, 1),
        (1, 2) => tile!(1, 2),
        (1, 3) => tile!(1, 3),
        (1, 4) => tile!(1, 4),
        (1, 5) => tile!(1, 5),
        _ => {
            for i in 0..nr {
                for p in p0..p0 + rem {
                    panel_tile::<S, T, B, 1, 1>(s, panels, points, dim, n_points, g + i, p, out);
                }
            }
        }
    }
}

/// Panels g..g+NR against points p0..p0+C. SAFETY: both ranges exist in `panel_dots`' shapes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn panel_tile<S: Isa, T: Element, B: Element, const NR: usize, const C: usize>(
    s: S,
    panels: &[T],
    points: &[B],
    dim: usize,
    n_points: usize,
    g: usize,
    p0: usize,
    out: &mut [f64],
) {
    let base = panels.as_ptr().add(g * dim * ROW_PANEL);
    let pts = points.as_ptr().add(p0 * dim);
    let mut acc = [[s.zero(); C]; NR];
    for j in 0..dim {
        let x: [S::V8; NR] = std::array::from_fn(|i| load8(s, base.add((i * dim + j) * ROW_PANEL)));
        for c in 0..C {
            let v = s.splat((*pts.add(c * dim + j)).to_f64());
            for (acc_i, &xi) in acc.iter_mut().zip(&x) {
                acc_i[c] = s.mul_add(xi, v, acc_i[c]);
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (c, &a) in acc_i.iter().enumerate() {
            let lanes = s.lanes(a);
            let row0 = (g + i) * ROW_PANEL;
            for (l, &value) in lanes.iter().enumerate() {
                *out.get_unchecked_mut((row0 + l) * n_points + p0 + c) = value;
            }
        }
    }
}

/// `panels[(r / 8) * dim * 8 + j * 8 + r % 8] = rows[r][j]`, zero past the last row.
pub(super) fn pack_row_panels<T: Element>(rows: &[T], dim: usize) -> Vec<T> {
    let n = rows.len() / dim;
    let n_panels = n.div_ceil(ROW_PANEL);
    let mut panels = vec![T::from_f64(0.0); n_panels * dim * ROW_PANEL];
    for (r, row) in rows.chunks_exact(dim).enumerate() {
        let panel = &mut panels[(r / ROW_PANEL) * dim * ROW_PANEL..];
        for (j, &v) in row.iter().enumerate() {
            panel[j * ROW_PANEL + r % ROW_PANEL] = v;
        }
    }
    panels
}

/// Columns per panel of `gram_rows`' packed operands (one `V8`).
pub(super) const GRAM_PANEL: usize = 8;

/// Rows `i0..i1` (multiples of 8) of the Gram of two packed blocks: `out[(i − i0) * w + j − j0]
/// = Σ_r left[r][i] · right[r][j]` for every j from j0 = 8·⌊i/8⌋ (the start of i's panel) to the
/// last panel, w = panels·8 − i0 (columns before j0 are left as they are). Packed: panel q holds
/// columns 8q..8q+8 of every row, `m × 8` row-major. An outer-product register tile of R rows ×
/// 8J columns: each value is one chain of fused multiply-adds over r in order in its own lane, so
/// the same whatever the tile, the range of rows, or the level (when fused).
#[inline(always)]
pub(super) fn gram_rows<S: Isa>(
    s: S,
    left: &[f64],
    right: &[f64],
    m: usize,
    (i0, i1): (usize, usize),
    out: &mut [f64],
) {
    let panels = left.len() / (m * GRAM_PANEL).max(1);
    assert!(left.len() == panels * m * GRAM_PANEL && right.len() == left.len());
    assert!(i0.is_multiple_of(GRAM_PANEL) && i1.is_multiple_of(GRAM_PANEL));
    assert!(i0 <= i1 && i1 <= panels * GRAM_PANEL);
    let w = panels * GRAM_PANEL - i0;
    assert!(out.len() == (i1 - i0) * w);
    match S::GRAM_TILE {
        (8, 3) => gram_rows_tiled::<S, 8, 3>(s, left, right, m, (i0, i1), out),
        (4, 1) => gram_rows_tiled::<S, 4, 1>(s, left, right, m, (i0, i1), out),
        _ => gram_rows_tiled::<S, 2, 1>(s, left, right, m, (i0, i1), out),
    }
}

/// `gram_rows` in tiles of R rows (R divides 8) × J panels, the last group of panels narrower.
#[inline(always)]
fn gram_rows_tiled<S: Isa, const R: usize, const J: usize>(
    s: S,
    left: &[f64],
    right: &[f64],
    m: usize,
    (i0, i1): (usize, usize),
    out: &mut [f64],
) {
    let panels = left.len() / (m * GRAM_PANEL).max(1);
    let w = panels * GRAM_PANEL - i0;
    let panel = |q: usize| q * m * GRAM_PANEL;
    let mut i = i0;
    while i < i1 {
        let p = i / GRAM_PANEL;
        // SAFETY: rows i..i+R lie in panel p (R divides 8); panels q..q+take exist; the output
        // rows i..i+R and columns 8q − i0.. 8(q + take) − i0 lie within `out` (checked above).
        let a = unsafe { left.as_ptr().add(panel(p) + i % GRAM_PANEL) };
        let mut q = p;
        while q < panels {
            let take = (panels - q).min(J);
            let o = unsafe { out.as_mut_ptr().add((i - i0) * w + q * GRAM_PANEL - i0) };
            let b = unsafe { right.as_ptr().add(panel(q)) };
            unsafe {
                if take == J {
                    gram_tile::<S, R, J>(s, a, b, m, o, w)
                } else if take == 2 {
                    gram_tile::<S, R, 2>(s, a, b, m, o, w)
                } else {
                    gram_tile::<S, R, 1>(s, a, b, m, o, w)
                }
            }
            q += take;
        }
        i += R;
    }
}

/// R rows (at `a`, stride 8) × J panels (at `b`, `m × 8` each) over the m rows, into `out`
/// (row stride `w`). SAFETY: the operands hold m rows; `out` R rows of 8J values at stride w.
#[allow(clippy::needless_range_loop)] // index loops over the constant shapes, see below
#[inline(always)]
unsafe fn gram_tile<S: Isa, const R: usize, const J: usize>(
    s: S,
    a: *const f64,
    b: *const f64,
    m: usize,
    out: *mut f64,
    w: usize,
) {
    // Index loops over the constant shapes: they unroll fully into registers.
    let mut acc = [[s.zero(); J]; R];
    let mut bv = [s.zero(); J];
    for r in 0..m {
        for q in 0..J {
            bv[q] = s.load(b.add((q * m + r) * GRAM_PANEL));
        }
        for p in 0..R {
            let av = s.splat(*a.add(r * GRAM_PANEL + p));
            for q in 0..J {
                acc[p][q] = s.mul_add(av, bv[q], acc[p][q]);
            }
        }
    }
    for p in 0..R {
        for q in 0..J {
            s.store(out.add(p * w + q * GRAM_PANEL), acc[p][q]);
        }
    }
}
