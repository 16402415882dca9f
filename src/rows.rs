//! Row-major matrix views over caller-owned memory, generic over the stored float type.

use rayon::prelude::*;

use crate::error::GioError;
use crate::parallel::{install, worth_parallel};

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

    /// Like `new`, and also rejects NaN and infinite values. Checked in fixed chunks without
    /// early exit (so the check vectorises), in parallel for large inputs: a pass at memory speed,
    /// which matters because every call from Python runs it on the whole pool.
    pub fn new_finite(name: &'static str, data: &'a [T], dim: usize) -> Result<Self, GioError> {
        const CHUNK: usize = 1 << 14;
        let rows = Self::new(name, data, dim)?;
        let finite = |chunk: &[T]| chunk.iter().fold(true, |ok, v| ok & v.is_finite());
        let bad_chunk = if worth_parallel(data.len()) {
            install(|| data.par_chunks(CHUNK).position_first(|c| !finite(c)))
        } else {
            data.chunks(CHUNK).position(|c| !finite(c))
        };
        if let Some(chunk) = bad_chunk {
            let pos = chunk * CHUNK
                + data[chunk * CHUNK..]
                    .iter()
                    .position(|v| !v.is_finite())
                    .expect("the chunk has a non-finite value");
            return Err(GioError::invalid(
                name,
                format!(
                    "contains NaN or infinite values (first at row {}, column {})",
                    pos / dim,
                    pos % dim
                ),
            ));
        }
        Ok(rows)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_finite_names_the_first_bad_value() {
        // Small (serial) and large (parallel, many chunks) inputs, bad values in several chunks:
        // the first one in row-major order is reported.
        for (n, dim) in [(7usize, 3usize), (50_000, 10)] {
            let mut data = vec![1.0f32; n * dim];
            assert!(Rows::new_finite("x", &data, dim).is_ok());
            let last = n * dim - 1;
            for (first, other) in [(last, last), (n * dim / 2 + 1, last), (4, n * dim / 2)] {
                data[other] = f32::INFINITY;
                data[first] = f32::NAN;
                let err = Rows::new_finite("x", &data, dim).unwrap_err().to_string();
                let expected = format!("first at row {}, column {}", first / dim, first % dim);
                assert!(err.starts_with("x: ") && err.contains(&expected), "{err}");
                data[first] = 1.0;
                data[other] = 1.0;
            }
            let wide: Vec<f64> = data.iter().map(|&v| v as f64).collect();
            assert!(Rows::new_finite("x", &wide, dim).is_ok());
        }
    }
}
