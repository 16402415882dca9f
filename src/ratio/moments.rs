//! Mean and covariance of rows (float32 or float64), accumulated in float64 by GEMM-shaped
//! blocks, streaming or in memory, with results that depend only on the rows and where the
//! blocks fall in the global row index.
//!
//! Rows are grouped in blocks of `BLOCK_ROWS` consecutive rows counted from the accumulator's
//! first row, whatever the batches they arrive in (a partial block is buffered between `add`
//! calls). Each block is shifted by a fixed reference point `c` (given, or the first block's
//! mean), packed in float64 column panels of 8 (`simd::GRAM_PANEL`) and the upper triangle of its
//! Gram Σ_r (x_r − c)(x_r − c)ᵀ formed by `simd::gram_rows`, an outer-product register tile
//! (8 × 24 on AVX-512) that adds x_r[i] · x_r[j..j+24] for every row r in order: each Gram value
//! is one chain of fused multiply-adds over the block's rows in order, so the same on every fused
//! SIMD level and for any split of the output rows into threads. Block results are added to the
//! running sums in block order. Hence: bit-identical for any thread count, any fused level and
//! any batching (x86-64's scalar level rounds each product separately: within roundoff).
//! Products are formed in float64 from float32 inputs widened exactly, so the only roundings are
//! float64 ones: per value, about (BLOCK_ROWS + number of blocks) · 2⁻⁵³ relative to
//! Σ|x_i − c_i||x_j − c_j|.

use crate::error::GioError;
use crate::parallel::map_chunks_mut;
use crate::rows::{Element, Rows};
use crate::simd::{gram_rows, GRAM_PANEL};

/// Rows per block: the block's packed copy (256 × dim float64, 768 KiB at dim 384) stays in a
/// core's L2 while its Gram streams it.
pub const BLOCK_ROWS: usize = 256;

/// Output rows of the Gram's upper triangle handled per task (a multiple of `GRAM_PANEL`).
const GRAM_ROWS_PER_TASK: usize = 16;

/// Count, mean and covariance (divisor count, as reference_ratio.Moments) of the rows seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    pub count: usize,
    pub mean: Vec<f64>,
    /// dim × dim, row-major, symmetric.
    pub covariance: Vec<f64>,
}

/// Streaming mean and covariance (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct MomentsAccumulator {
    dim: usize,
    /// The reference point rows are shifted by; `None` until the first block is flushed.
    shift: Option<Vec<f64>>,
    /// Rows folded into `sums` and `scatter`.
    count: usize,
    /// Σ (x − c).
    sums: Vec<f64>,
    /// Σ (x − c)(x − c)ᵀ, upper triangle (i <= j) of a dim × dim row-major matrix.
    scatter: Vec<f64>,
    /// The current partial block's rows, widened to float64.
    pending: Vec<f64>,
}

impl MomentsAccumulator {
    /// An accumulator for rows of `dim` values, shifted by the first block's mean.
    pub fn new(dim: usize) -> Result<Self, GioError> {
        if dim == 0 {
            return Err(GioError::invalid("dim", "must be >= 1, got 0"));
        }
        Ok(MomentsAccumulator {
            dim,
            shift: None,
            count: 0,
            sums: vec![0.0; dim],
            scatter: vec![0.0; dim * dim],
            pending: Vec::new(),
        })
    }

    /// An accumulator shifted by `shift` (e.g. the target mean): accumulators over different
    /// row ranges with one shift merge without re-expressing their sums.
    pub fn with_shift(shift: &[f64]) -> Result<Self, GioError> {
        if shift.iter().any(|v| !v.is_finite()) {
            return Err(GioError::invalid("shift", "must be finite"));
        }
        let mut acc = Self::new(shift.len())?;
        acc.shift = Some(shift.to_vec());
        Ok(acc)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The reference point rows are shifted by, once known.
    pub fn shift(&self) -> Option<&[f64]> {
        self.shift.as_deref()
    }

    /// Rows added so far (buffered ones included).
    pub fn count(&self) -> usize {
        self.count + self.pending.len() / self.dim
    }

    /// Adds the rows of `rows` (the next rows of the sequence).
    pub fn add<T: Element>(&mut self, rows: Rows<'_, T>) -> Result<(), GioError> {
        if rows.dim() != self.dim {
            return Err(GioError::invalid(
                "rows",
                format!("has {} columns, expected {}", rows.dim(), self.dim),
            ));
        }
        let mut next = 0;
        let n = rows.len();
        // One packed block reused by every block of the call (fresh pages cost a fault each).
        let mut packed = Vec::new();
        if !self.pending.is_empty() {
            let want = BLOCK_ROWS - self.pending.len() / self.dim;
            next = want.min(n);
            let part = rows.slice(0, next);
            self.pending.extend(part.data().iter().map(|v| v.to_f64()));
            if next < want {
                return Ok(());
            }
            let block = std::mem::take(&mut self.pending);
            self.flush_block(Rows::new("rows", &block, self.dim)?, &mut packed);
        }
        while n - next >= BLOCK_ROWS {
            self.flush_block(rows.slice(next, next + BLOCK_ROWS), &mut packed);
            next += BLOCK_ROWS;
        }
        let rest = rows.slice(next, n);
        self.pending.extend(rest.data().iter().map(|v| v.to_f64()));
        Ok(())
    }

    /// Folds the rows of `later` (an accumulator over the rows right after this one's) into this
    /// one. Deterministic for a given partitioning: this one's partial block is flushed as a short
    /// block, `later`'s sums are re-expressed about this shift, `later`'s partial block stays
    /// pending (its block phase continues).
    pub fn merge(&mut self, later: &MomentsAccumulator) -> Result<(), GioError> {
        if later.dim != self.dim {
            return Err(GioError::invalid(
                "other",
                format!("has {} columns, expected {}", later.dim, self.dim),
            ));
        }
        self.flush_pending();
        let mut later = later.clone();
        let pending = std::mem::take(&mut later.pending);
        if later.count > 0 {
            match &self.shift {
                None => {
                    self.shift = later.shift.clone();
                    self.sums = later.sums;
                    self.scatter = later.scatter;
                }
                Some(shift) => {
                    later.reshift(shift);
                    add_into(&mut self.sums, &later.sums);
                    add_upper(&mut self.scatter, &later.scatter, self.dim);
                }
            }
            self.count += later.count;
        }
        self.pending = pending;
        Ok(())
    }

    /// Re-expresses the sums about `to`: with δ = c − to, Σ(x − to)(x − to)ᵀ = S + sδᵀ + δsᵀ +
    /// nδδᵀ and Σ(x − to) = s + nδ.
    fn reshift(&mut self, to: &[f64]) {
        let from = self.shift.as_deref().expect("sums exist only with a shift");
        let delta: Vec<f64> = from.iter().zip(to).map(|(f, t)| f - t).collect();
        let (d, n) = (self.dim, self.count as f64);
        for i in 0..d {
            for j in i..d {
                let extra = self.sums[i] * delta[j] + delta[i] * self.sums[j];
                self.scatter[i * d + j] += extra + n * delta[i] * delta[j];
            }
        }
        for (s, dl) in self.sums.iter_mut().zip(&delta) {
            *s += n * dl;
        }
        self.shift = Some(to.to_vec());
    }

    /// Flushes the partial block, if any, as a short block.
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let block = std::mem::take(&mut self.pending);
        let rows = Rows::new("rows", &block, self.dim).expect("whole rows are buffered");
        self.flush_block(rows, &mut Vec::new());
    }

    /// Folds one block into the sums (its Gram added in one pass, after the previous block's).
    fn flush_block<T: Element>(&mut self, block: Rows<'_, T>, packed: &mut Vec<f64>) {
        let shift = self
            .shift
            .get_or_insert_with(|| block.column_means())
            .clone();
        shifted_panels(block, &shift, None, packed);
        let m = block.len();
        let column_sums = packed_column_sums(packed, m, self.dim);
        add_into(&mut self.sums, &column_sums);
        add_block_gram(&mut self.scatter, packed, packed, self.dim, m);
        self.count += m;
    }

    /// The moments of every row added. Errors when no row was added.
    pub fn finish(&self) -> Result<Moments, GioError> {
        let mut acc = self.clone();
        acc.flush_pending();
        if acc.count == 0 {
            return Err(GioError::invalid("rows", "no rows were added"));
        }
        let (d, n) = (acc.dim, acc.count as f64);
        let shift = acc.shift.as_deref().expect("rows were added");
        let mean: Vec<f64> = shift
            .iter()
            .zip(&acc.sums)
            .map(|(c, s)| c + s / n)
            .collect();
        let divisor = n;
        let mut covariance = vec![0.0; d * d];
        for i in 0..d {
            for j in i..d {
                let centred = acc.scatter[i * d + j] - acc.sums[i] * acc.sums[j] / n;
                covariance[i * d + j] = centred / divisor;
                covariance[j * d + i] = centred / divisor;
            }
        }
        Ok(Moments {
            count: acc.count,
            mean,
            covariance,
        })
    }
}

/// The rows of `block` minus `shift`, times `weights[r]` when given, into `packed` in float64
/// column panels of `GRAM_PANEL` (`packed[(j / 8) * m * 8 + r * 8 + j % 8]`), the last one
/// zero-padded.
pub(crate) fn shifted_panels<T: Element>(
    block: Rows<'_, T>,
    shift: &[f64],
    weights: Option<&[f64]>,
    packed: &mut Vec<f64>,
) {
    let m = block.len();
    packed.clear();
    packed.resize(block.dim().div_ceil(GRAM_PANEL) * GRAM_PANEL * m, 0.0);
    for r in 0..m {
        let w = weights.map_or(1.0, |w| w[r]);
        let parts = block
            .row(r)
            .chunks(GRAM_PANEL)
            .zip(shift.chunks(GRAM_PANEL));
        for (q, (values, shifts)) in parts.enumerate() {
            let at = (q * m + r) * GRAM_PANEL;
            for ((p, &v), c) in packed[at..at + values.len()]
                .iter_mut()
                .zip(values)
                .zip(shifts)
            {
                *p = (v.to_f64() - c) * w;
            }
        }
    }
}

/// Σ_r of each of the `dim` columns of a block packed by `shifted_panels`, over r in order.
fn packed_column_sums(packed: &[f64], m: usize, dim: usize) -> Vec<f64> {
    let mut sums = vec![0.0; dim.div_ceil(GRAM_PANEL) * GRAM_PANEL];
    for (panel, out) in packed
        .chunks_exact(m * GRAM_PANEL)
        .zip(sums.chunks_exact_mut(GRAM_PANEL))
    {
        for row in panel.chunks_exact(GRAM_PANEL) {
            add_into(out, row);
        }
    }
    sums.truncate(dim);
    sums
}

/// `scatter[i][j] += Σ_r left[r][i] · right[r][j]` for i <= j (both m rows packed by
/// `shifted_panels`), in parallel over fixed groups of output rows; each value is one chain of
/// multiply-adds over r (`simd::gram_rows`), so the result is the same for any thread count.
pub(crate) fn add_block_gram(
    scatter: &mut [f64],
    left: &[f64],
    right: &[f64],
    dim: usize,
    m: usize,
) {
    let work = dim * dim * m / 2;
    let padded = dim.div_ceil(GRAM_PANEL) * GRAM_PANEL;
    map_chunks_mut(
        work,
        scatter,
        GRAM_ROWS_PER_TASK * dim,
        |(task, out_rows)| {
            let i0 = task * GRAM_ROWS_PER_TASK;
            let rows = out_rows.len() / dim;
            let i1 = (i0 + rows).div_ceil(GRAM_PANEL) * GRAM_PANEL;
            let w = padded - i0;
            let mut tile = vec![0.0f64; (i1 - i0) * w];
            gram_rows(left, right, m, (i0, i1), &mut tile);
            for r in 0..rows {
                let i = i0 + r;
                let out = &mut out_rows[r * dim + i..(r + 1) * dim];
                add_into(out, &tile[r * w + r..r * w + dim - i0]);
            }
        },
    );
}

fn add_into(acc: &mut [f64], values: &[f64]) {
    for (a, v) in acc.iter_mut().zip(values) {
        *a += v;
    }
}

fn add_upper(acc: &mut [f64], values: &[f64], dim: usize) {
    for i in 0..dim {
        add_into(
            &mut acc[i * dim + i..(i + 1) * dim],
            &values[i * dim + i..(i + 1) * dim],
        );
    }
}

/// Σ_r w_r (x_r − c)(x_r − c)ᵀ over `rows` (full dim × dim, symmetric, row-major), by the same
/// blocks as the accumulator (for in-memory uses such as a weighted Hessian).
pub fn weighted_scatter<T: Element>(rows: Rows<'_, T>, weights: &[f64], shift: &[f64]) -> Vec<f64> {
    assert!(weights.len() == rows.len() && shift.len() == rows.dim());
    let d = rows.dim();
    let mut scatter = vec![0.0; d * d];
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < rows.len() {
        let end = (start + BLOCK_ROWS).min(rows.len());
        let block = rows.slice(start, end);
        shifted_panels(block, shift, Some(&weights[start..end]), &mut left);
        shifted_panels(block, shift, None, &mut right);
        add_block_gram(&mut scatter, &left, &right, d, end - start);
        start = end;
    }
    for i in 0..d {
        for j in 0..i {
            scatter[i * d + j] = scatter[j * d + i];
        }
    }
    scatter
}
