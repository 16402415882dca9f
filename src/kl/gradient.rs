//! The gradient of the averaged estimator with respect to an added point v, for one or several
//! points in one pass over X: Gram-form distances in L2-resident blocks, exact differences for
//! rows near v, per-chunk partial sums combined in order.

use super::averaged::KlState;
use crate::distance::{expansion_error_factor, sq_dist, CLIP_HIGH, CLIP_LOW};
use crate::parallel::{for_each_row_chunk_into, rows_per_large_chunk};
use crate::rows::Element;
use crate::simd::{add_scaled_difference, add_weighted_rows, dot, ROW_PANEL};

/// The gradient works through X in blocks of at most this many bytes (L2-resident: each block
/// is read once for its dots and once per 4 points for the weighted sums)...
const GRADIENT_BLOCK_BYTES: usize = 256 * 1024;
/// ...and at most this many rows (a multiple of 8, the panel height).
const MAX_GRADIENT_BLOCK: usize = 64;
/// Points whose gradients are computed in one pass over X.
const MAX_POINTS: usize = 16;
/// Rows whose squared distance to v is below this share of ‖x‖² + ‖v‖² use exact differences.
const NEAR: f64 = 1e-2;

/// Scratch space for `KlState::gradient`, reused across descent steps.
#[derive(Debug, Default)]
pub struct GradientWork {
    partials: Vec<f64>,
    totals: Vec<f64>,
}

impl<T: Element> KlState<'_, T> {
    /// Gradient of KL(X ‖ W ∪ {v}) with respect to v (docs/reference.md):
    /// d/(n·m') Σ_i (v − x_i) / (r_i (r_i + ε)), r_i = ‖x_i − v‖, terms with the squared distance
    /// outside (1e-10, 1e20) are 0; with discard, m' = |W| and row i is dropped where v is
    /// strictly nearer to x_i than every row of W.
    pub fn gradient(&self, v: &[f64], work: &mut GradientWork, out: &mut [f64]) {
        self.gradient_sums(v, work, out);
        let factor = self.gradient_factor(self.m);
        out.iter_mut().for_each(|o| *o *= factor);
    }

    /// The gradient's factor d/(n·m') for a selection of `m` rows.
    pub fn gradient_factor(&self, m: usize) -> f64 {
        let m_eff = if self.params.discard_nearest_for_xy {
            m
        } else {
            m + 1
        };
        self.x.dim() as f64 / (self.x.len() as f64 * m_eff as f64)
    }

    /// The gradient's sums Σ_i c_i (v − x_i), before the factor, for several points at once
    /// (the rows of `vs`, written to the rows of `out`): X is read from memory once for all of
    /// them. Each point's result is bit-identical to computing it alone.
    ///
    /// Distances come from the Gram form ‖x‖² + ‖v‖² − 2x·v (GEMM-like tiles) and the sum from
    /// (Σ c_i)·v − Σ c_i x_i, except for rows near v (squared distance under `NEAR` of the norms,
    /// where the Gram form cancels), which use exact differences: far rows carry a relative error
    /// of at most `expansion_error_factor(d) / NEAR` ≈ 2e-11 at d = 768, near rows none.
    pub fn gradient_sums(&self, vs: &[f64], work: &mut GradientWork, out: &mut [f64]) {
        let dim = self.x.dim();
        let points = vs.len() / dim;
        assert!(vs.len() == points * dim && out.len() == vs.len());
        if points > MAX_POINTS {
            for (v, o) in vs
                .chunks(MAX_POINTS * dim)
                .zip(out.chunks_mut(MAX_POINTS * dim))
            {
                self.gradient_sums(v, work, o);
            }
            return;
        }
        let pass = GradientPass::new(self, vs);
        let rows_per_chunk = rows_per_large_chunk(dim).div_ceil(ROW_PANEL) * ROW_PANEL;
        let n_chunks = self.x.len().div_ceil(rows_per_chunk);
        // Per chunk: Σ c x over far rows, Σ c over far rows, a flag (1.0) per point whose near
        // part below is in use, Σ c (v − x) over near rows (zeroed only once used: rarely).
        let per_chunk = 2 * points * dim + 2 * points;
        work.partials.resize(n_chunks * per_chunk, 0.0);
        for_each_row_chunk_into(
            self.x.len(),
            rows_per_chunk,
            dim,
            &mut work.partials,
            per_chunk,
            |start, end, part| pass.chunk(start, end, part),
        );
        let partials = &work.partials[..n_chunks * per_chunk];
        combine_chunks(partials, &mut work.totals, points, dim);
        write_sums(out, vs, &work.totals, points, dim);
    }
}

/// One pass of `gradient_sums` over X for up to `MAX_POINTS` points: what every chunk reads.
struct GradientPass<'s, 'a, T: Element> {
    state: &'s KlState<'a, T>,
    vs: &'s [f64],
    points: usize,
    dim: usize,
    v_norms: [f64; MAX_POINTS],
    /// The Gram form's roundoff per unit of ‖x‖² + ‖v‖².
    gamma: f64,
    /// Rows per block: a multiple of the panel height that stays in L2 for its passes.
    block: usize,
}

/// One chunk's partial sums, views into its part of `GradientWork::partials`.
struct ChunkSums<'p> {
    far: &'p mut [f64],
    coef_sums: &'p mut [f64],
    near_used: &'p mut [f64],
    near: &'p mut [f64],
}

impl<'p> ChunkSums<'p> {
    /// Splits a chunk's part and zeroes it (the near sums only once used).
    fn zeroed(part: &'p mut [f64], points: usize, dim: usize) -> Self {
        let (far, rest) = part.split_at_mut(points * dim);
        let (coef_sums, rest) = rest.split_at_mut(points);
        let (near_used, near) = rest.split_at_mut(points);
        far.fill(0.0);
        coef_sums.fill(0.0);
        near_used.fill(0.0);
        ChunkSums {
            far,
            coef_sums,
            near_used,
            near,
        }
    }
}

impl<'s, 'a, T: Element> GradientPass<'s, 'a, T> {
    fn new(state: &'s KlState<'a, T>, vs: &'s [f64]) -> Self {
        let dim = state.x.dim();
        let mut v_norms = [0.0f64; MAX_POINTS];
        for (norm, v) in v_norms.iter_mut().zip(vs.chunks_exact(dim)) {
            *norm = dot(v, v);
        }
        let block = ((GRADIENT_BLOCK_BYTES / (dim * std::mem::size_of::<T>())) / ROW_PANEL
            * ROW_PANEL)
            .clamp(ROW_PANEL, MAX_GRADIENT_BLOCK);
        GradientPass {
            state,
            vs,
            points: vs.len() / dim,
            dim,
            v_norms,
            gamma: expansion_error_factor(dim),
            block,
        }
    }

    /// The partial sums of rows `start..end` into `part`, block by block.
    fn chunk(&self, start: usize, end: usize, part: &mut [f64]) {
        let mut sums = ChunkSums::zeroed(part, self.points, self.dim);
        let mut dots = [0.0f64; MAX_GRADIENT_BLOCK * MAX_POINTS];
        let mut coefs = [0.0f64; MAX_GRADIENT_BLOCK * MAX_POINTS];
        for block_start in (start..end).step_by(self.block) {
            let block_end = (block_start + self.block).min(end);
            self.block(block_start, block_end, &mut sums, &mut dots, &mut coefs);
        }
    }

    /// One L2-resident block of rows: the dots of every row with every point, each cell's
    /// coefficient, near rows summed from exact differences, far rows in one weighted pass.
    fn block(
        &self,
        block_start: usize,
        block_end: usize,
        sums: &mut ChunkSums<'_>,
        dots: &mut [f64],
        coefs: &mut [f64],
    ) {
        let (x, points, dim, vs) = (self.state.x, self.points, self.dim, self.vs);
        let rows = x.slice(block_start, block_end);
        let cells = rows.len() * points;
        let padded = rows.len().div_ceil(ROW_PANEL) * ROW_PANEL * points;
        self.state
            .panels
            .dots(block_start, block_end, vs, &mut dots[..padded]);
        for (cell, (&dot_rv, coef)) in dots[..cells].iter().zip(&mut coefs[..cells]).enumerate() {
            let (r, p) = (cell / points, cell % points);
            let i = block_start + r;
            let v = &vs[p * dim..(p + 1) * dim];
            let (is_near, c) = self.coefficient(i, p, v, dot_rv);
            if is_near {
                *coef = 0.0;
                if c != 0.0 {
                    let near = &mut sums.near[p * dim..(p + 1) * dim];
                    if sums.near_used[p] == 0.0 {
                        near.fill(0.0);
                        sums.near_used[p] = 1.0;
                    }
                    add_scaled_difference(near, c, v, x.row(i));
                }
            } else {
                *coef = c;
                sums.coef_sums[p] += c;
            }
        }
        add_weighted_rows(sums.far, &coefs[..cells], rows.data(), dim);
    }

    /// Row `i` against point `p` (`v`, with Gram dot `dot_rv`): whether it is near (its distance
    /// from exact differences) and its coefficient c = 1 / (r (r + ε)), 0 outside the clip
    /// range or where discard drops the row.
    #[inline]
    fn coefficient(&self, i: usize, p: usize, v: &[f64], dot_rv: f64) -> (bool, f64) {
        let state = self.state;
        let discard = state.params.discard_nearest_for_xy;
        // `nearest` is empty unless discard, so it is indexed behind `discard &&`.
        let nearest = &state.nearest_sq;
        let scale = state.x_norms[i] + self.v_norms[p];
        let approx = (scale - 2.0 * dot_rv).max(0.0);
        let error = self.gamma * scale;
        let is_near = !(approx >= NEAR * scale && error.is_finite())
            || (discard && approx - error < nearest[i]);
        let s = if is_near {
            sq_dist(v, state.x.row(i))
        } else {
            approx
        };
        let c = if !(s > CLIP_LOW && s < CLIP_HIGH) || (discard && s < nearest[i]) {
            0.0
        } else {
            let root = s.sqrt();
            1.0 / (root * (root + state.params.eps))
        };
        (is_near, c)
    }
}

/// Combines the chunks' partial sums in order into `totals` (far sums and coefficient sums,
/// then the near sums of the chunks that used them).
fn combine_chunks(partials: &[f64], totals: &mut Vec<f64>, points: usize, dim: usize) {
    let per_chunk = 2 * points * dim + 2 * points;
    totals.clear();
    totals.resize(per_chunk, 0.0);
    for partial in partials.chunks_exact(per_chunk) {
        let (far, rest) = partial.split_at(points * dim + points);
        let (near_used, near) = rest.split_at(points);
        for (t, &p) in totals.iter_mut().zip(far) {
            *t += p;
        }
        let near_totals = &mut totals[points * dim + 2 * points..];
        for ((t, p), _) in near_totals
            .chunks_exact_mut(dim)
            .zip(near.chunks_exact(dim))
            .zip(near_used)
            .filter(|(_, &used)| used != 0.0)
        {
            for (tj, &pj) in t.iter_mut().zip(p) {
                *tj += pj;
            }
        }
    }
}

/// (Σ c)·v − Σ c x + Σ_near c (v − x) per point, from the combined `totals`.
fn write_sums(out: &mut [f64], vs: &[f64], totals: &[f64], points: usize, dim: usize) {
    let (far, rest) = totals.split_at(points * dim);
    let (coef_sums, rest) = rest.split_at(points);
    let near = &rest[points..];
    let per_point = out
        .chunks_exact_mut(dim)
        .zip(vs.chunks_exact(dim))
        .zip(far.chunks_exact(dim).zip(near.chunks_exact(dim)))
        .zip(coef_sums);
    for (((out, v), (far, near)), &coef_sum) in per_point {
        for (((o, &vj), &f), &nr) in out.iter_mut().zip(v).zip(far).zip(near) {
            // Not mul_add: outside the SIMD entry points that would be a libm call.
            *o = coef_sum * vj - f + nr;
        }
    }
}
