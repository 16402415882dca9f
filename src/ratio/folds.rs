//! Cross-validation folds that streaming, in-memory and partitioned runs agree on: pool rows by
//! block (block b = rows b·BLOCK_ROWS.. of the global row index goes to fold b mod F, so a fold's
//! moments are whole accumulator blocks), target rows by a seeded permutation cut round robin.

use crate::error::GioError;
use crate::ratio::moments::{MomentsAccumulator, BLOCK_ROWS};
use crate::rng::SplitMix64;
use crate::rows::{Element, Rows};

/// The fold of global pool row `row` among `folds`.
pub fn pool_fold(row: usize, folds: usize) -> usize {
    (row / BLOCK_ROWS) % folds
}

/// The fold of each of `n` target rows: a Fisher–Yates permutation drawn with
/// `SplitMix64::new(seed)` (from the last position down, j = below(i + 1)), then position p of
/// the permutation gets fold p mod F.
pub fn target_folds(n: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut ids = vec![0; n];
    for (p, &row) in order.iter().enumerate() {
        ids[row] = p % folds;
    }
    ids
}

/// Pool moments per fold (all with one shift), fed rows in order in batches of any size.
#[derive(Debug, Clone)]
pub struct FoldedMoments {
    folds: Vec<MomentsAccumulator>,
    /// The global index of the first row (a later partition starts past 0).
    start: usize,
    /// The next row's global index.
    rows: usize,
}

impl FoldedMoments {
    pub fn new(shift: &[f64], folds: usize) -> Result<Self, GioError> {
        Self::starting_at(shift, folds, 0)
    }

    /// Moments of the rows from global row `first_row` on (a partition or a later batch range
    /// of a pool): rows go to the folds of their global indices.
    pub fn starting_at(shift: &[f64], folds: usize, first_row: usize) -> Result<Self, GioError> {
        crate::params::at_least("folds", folds, 1)?;
        let acc = MomentsAccumulator::with_shift(shift)?;
        Ok(FoldedMoments {
            folds: vec![acc; folds],
            start: first_row,
            rows: first_row,
        })
    }

    /// Folds in `later`, the moments of the rows right after this one's (same shift and folds),
    /// fold by fold (`MomentsAccumulator::merge`: deterministic for a given partitioning).
    pub fn merge(&mut self, later: &FoldedMoments) -> Result<(), GioError> {
        if later.folds.len() != self.folds.len() || later.start != self.rows {
            return Err(GioError::invalid(
                "other",
                format!(
                    "must hold the rows from {} on in {} folds, got rows from {} in {} folds",
                    self.rows,
                    self.folds.len(),
                    later.start,
                    later.folds.len()
                ),
            ));
        }
        if later.shift() != self.shift() {
            return Err(GioError::invalid("other", "must use the same shift"));
        }
        for (mine, theirs) in self.folds.iter_mut().zip(&later.folds) {
            mine.merge(theirs)?;
        }
        self.rows = later.rows;
        Ok(())
    }

    /// Adds the next rows; each block's rows go to its fold's accumulator (a block split over
    /// batches is buffered there, since nothing else reaches that accumulator meanwhile).
    pub fn add<T: Element>(&mut self, rows: Rows<'_, T>) -> Result<(), GioError> {
        let mut start = 0;
        while start < rows.len() {
            let global = self.rows + start;
            let end = (start + BLOCK_ROWS - global % BLOCK_ROWS).min(rows.len());
            let f = pool_fold(global, self.folds.len());
            self.folds[f].add(rows.slice(start, end))?;
            start = end;
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Rows added so far.
    pub fn count(&self) -> usize {
        self.rows - self.start
    }

    /// The global index of the next row.
    pub fn next_row(&self) -> usize {
        self.rows
    }

    pub fn n_folds(&self) -> usize {
        self.folds.len()
    }

    /// The accumulators of every fold but `left_out` (None: all folds), merged in fold order.
    pub fn combined(&self, left_out: Option<usize>) -> Result<MomentsAccumulator, GioError> {
        let mut acc = MomentsAccumulator::with_shift(&self.shift())?;
        for (f, fold) in self.folds.iter().enumerate() {
            if Some(f) != left_out {
                acc.merge(fold)?;
            }
        }
        Ok(acc)
    }

    fn shift(&self) -> Vec<f64> {
        self.folds[0].shift().expect("built with a shift").to_vec()
    }
}
