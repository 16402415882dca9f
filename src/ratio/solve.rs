//! Cholesky factorisation of a symmetric positive definite matrix plus a ridge, (A + λI) = LLᵀ,
//! and solves with it, in float64. Plain row-oriented Cholesky–Banachiewicz: d³/6 multiply-adds,
//! each inner product one `simd::dot` over contiguous rows of L (the same result on every fused
//! SIMD level), a few milliseconds at d = 384.

use crate::error::GioError;
use crate::params::FloatRepr;
use crate::simd::dot;

/// L with (A + λI) = LLᵀ, lower triangle, dim × dim row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Cholesky {
    dim: usize,
    lower: Vec<f64>,
}

impl Cholesky {
    /// Factors `matrix + ridge·I` (`matrix` dim × dim, row-major, symmetric; only its lower
    /// triangle is read). `name` names the matrix in the error when it is not positive definite
    /// (a pivot not above 0, or not finite).
    pub fn factor(
        name: &'static str,
        matrix: &[f64],
        dim: usize,
        ridge: f64,
    ) -> Result<Self, GioError> {
        assert_eq!(matrix.len(), dim * dim);
        let mut lower = vec![0.0f64; dim * dim];
        for i in 0..dim {
            for j in 0..=i {
                let (row_i, row_j) = (&lower[i * dim..i * dim + j], &lower[j * dim..j * dim + j]);
                let mut value = matrix[i * dim + j] - dot(row_i, row_j);
                if i == j {
                    value += ridge;
                    if !(value > 0.0 && value.is_finite()) {
                        return Err(GioError::invalid(
                            name,
                            format!(
                                "is not positive definite with ridge {} (pivot {i} is {}): \
                                 raise the ridge",
                                FloatRepr(ridge),
                                FloatRepr(value)
                            ),
                        ));
                    }
                    lower[i * dim + i] = value.sqrt();
                } else {
                    lower[i * dim + j] = value / lower[j * dim + j];
                }
            }
        }
        Ok(Cholesky { dim, lower })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// x with (A + λI) x = b.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let d = self.dim;
        assert_eq!(b.len(), d);
        // L y = b, forwards.
        let mut y = vec![0.0f64; d];
        for i in 0..d {
            let row = &self.lower[i * d..i * d + i];
            y[i] = (b[i] - dot(row, &y[..i])) / self.lower[i * d + i];
        }
        // Lᵀ x = y, backwards (column i of L is row i of Lᵀ: strided, so plain loops).
        let mut x = y;
        for i in (0..d).rev() {
            let later = x[i + 1..]
                .iter()
                .enumerate()
                .fold(0.0, |acc, (k, v)| acc + self.lower[(i + 1 + k) * d + i] * v);
            x[i] = (x[i] - later) / self.lower[i * d + i];
        }
        x
    }

    /// log det(A + λI) = 2 Σ log L_ii.
    pub fn log_det(&self) -> f64 {
        (0..self.dim)
            .map(|i| self.lower[i * self.dim + i].ln())
            .sum::<f64>()
            * 2.0
    }
}
