//! Row-major matrix views over caller-owned memory, generic over the stored float type.

use crate::error::GioError;
use crate::parallel::map_in_order;

/// Which concrete float an `Element` is (lets the SIMD kernels pick their loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

/// A stored float type. Kernels read `Element`s and compute in f64, so float32 data stays
/// float32 in memory while sums and distances keep f64 accuracy.
pub trait Element: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Must be `F32` exactly for `f32` and `F64` exactly for `f64`: the kernels rely on it.
    const PRECISION: Precision;
    fn to_f64(self) -> f64;
    fn from_f64(value: f64) -> Self;
    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;
}

impl Element for f32 {
    const PRECISION: Precision = Precision::F32;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Element for f64 {
    const PRECISION: Precision = Precision::F64;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// A borrowed `n_rows × dim` row-major matrix.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a, T> {
    data: &'a [T],
    dim: usize,
}

impl<'a, T: Element> Rows<'a, T> {
    /// Wraps `data` as rows of length `dim`; `name` names the argument in errors.
    pub fn new(name: &'static str, data: &'a [T], dim: usize) -> Result<Self, GioError> {
        if dim == 0 {
            return Err(GioError::invalid(
                name,
                "rows must have at least one column",
            ));
        }
        if !data.len().is_multiple_of(dim) {
            return Err(GioError::invalid(
                name,
                format!("{} values do not split into rows of {dim}", data.len()),
            ));
        }
        Ok(Rows { data, dim })
    }

    /// Like `new`, and also rejects NaN and infinite values (`nonfinite_problem`).
    pub fn new_finite(name: &'static str, data: &'a [T], dim: usize) -> Result<Self, GioError> {
        let rows = Self::new(name, data, dim)?;
        match nonfinite_problem(data, dim, "rows") {
            Some(problem) => Err(GioError::invalid(name, problem)),
            None => Ok(rows),
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    #[inline(always)]
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[inline(always)]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    #[inline(always)]
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The rows `start..end` as a view.
    #[inline(always)]
    pub fn slice(&self, start: usize, end: usize) -> Rows<'a, T> {
        Rows {
            data: &self.data[start * self.dim..end * self.dim],
            dim: self.dim,
        }
    }

    /// Column means in f64.
    pub fn column_means(&self) -> Vec<f64> {
        let mut sums = vec![0.0f64; self.dim];
        for i in 0..self.len() {
            for (s, v) in sums.iter_mut().zip(self.row(i)) {
                *s += v.to_f64();
            }
        }
        let n = self.len().max(1) as f64;
        sums.iter_mut().for_each(|s| *s /= n);
        sums
    }
}

/// Most rows a "contains NaN or infinite values" message lists.
const LISTED_ROWS: usize = 10;

/// The problem with `data` (rows of `dim` values) if it holds NaN or infinite values:
/// "contains NaN or infinite values (rows 3, 17, ...)", listing the first ten such rows (`unit`
/// names them: "rows", or "positions" for a vector). One pass at memory speed: fixed chunks checked
/// without early exit (so the check vectorises), in parallel for large inputs; only the chunks
/// that hold a bad value are read again to find its rows.
pub fn nonfinite_problem<T: Element>(data: &[T], dim: usize, unit: &str) -> Option<String> {
    const CHUNK: usize = 1 << 14;
    let chunk = |c: usize| &data[c * CHUNK..((c + 1) * CHUNK).min(data.len())];
    let bad = map_in_order(data.len(), 0..data.len().div_ceil(CHUNK), |c| {
        !chunk(c).iter().fold(true, |ok, v| ok & v.is_finite())
    });
    let mut rows: Vec<usize> = Vec::new();
    'scan: for c in (0..bad.len()).filter(|&c| bad[c]) {
        for (i, v) in chunk(c).iter().enumerate() {
            let row = (c * CHUNK + i) / dim.max(1);
            if !v.is_finite() && rows.last() != Some(&row) {
                rows.push(row);
                if rows.len() > LISTED_ROWS {
                    break 'scan;
                }
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    let listed: Vec<String> = rows
        .iter()
        .take(LISTED_ROWS)
        .map(|r| r.to_string())
        .collect();
    let more = if rows.len() > LISTED_ROWS {
        ", ..."
    } else {
        ""
    };
    Some(format!(
        "contains NaN or infinite values ({unit} {}{more})",
        listed.join(", ")
    ))
}
