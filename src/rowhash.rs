//! Exact-duplicate detection: two 64-bit hashes of every row's values, and the grouping of rows
//! whose hashes are equal. The hashes are those `gio_rs.io.dedup` has always computed (its NumPy
//! reference `row_hashes`): each 64-bit little-endian word of a row is mixed with a key for its
//! position (SplitMix64's finaliser); the first hash sums the mixed words, the second sums them
//! times odd per-position factors, and both sums are mixed again with the word count. A float32
//! row is read as pairs of values per word (the last word zero-padded when the dimension is odd).

use rayon::prelude::*;

use crate::error::GioError;
use crate::parallel::{install, map_chunks_mut, rows_per_chunk, worth_parallel};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const FIRST_SEED: u64 = 0x243F_6A88_85A3_08D3;
const SECOND_SEED: u64 = 0x1319_8A2E_0370_7344;

/// SplitMix64's finaliser (wrapping arithmetic).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of each of `count` word positions for one of the two hashes.
fn position_keys(count: usize, seed: u64) -> Vec<u64> {
    (0..count as u64)
        .map(|j| mix(j.wrapping_mul(GOLDEN).wrapping_add(seed)))
        .collect()
}

/// The per-position keys of rows of `words` 64-bit words, computed once per batch.
struct Keys {
    xor: Vec<u64>,
    factor: Vec<u64>,
}

impl Keys {
    fn new(words: usize) -> Self {
        Keys {
            xor: position_keys(words, FIRST_SEED),
            factor: position_keys(words, SECOND_SEED)
                .into_iter()
                .map(|k| k | 1)
                .collect(),
        }
    }

    /// The two hashes of one row given as its words.
    #[inline]
    fn hash(&self, words: impl Iterator<Item = u64>) -> (u64, u64) {
        let (mut first, mut second) = (0u64, 0u64);
        for ((w, &k), &f) in words.zip(&self.xor).zip(&self.factor) {
            let m = mix(w ^ k);
            first = first.wrapping_add(m);
            second = second.wrapping_add(m.wrapping_mul(f));
        }
        let count = self.xor.len() as u64;
        (mix(first.wrapping_add(count)), mix(second ^ count))
    }
}

/// The bits of a float32 with -0.0 read as +0.0 (equal values, equal bits).
#[inline]
fn bits32(v: f32) -> u64 {
    u64::from((v + 0.0).to_bits())
}

/// The words of a float32 row: two values per word, the first in the low half.
fn words32(row: &[f32]) -> impl Iterator<Item = u64> + '_ {
    row.chunks(2)
        .map(|pair| bits32(pair[0]) | pair.get(1).map_or(0, |&v| bits32(v) << 32))
}

/// The words of a float64 row, -0.0 read as +0.0.
fn words64(row: &[f64]) -> impl Iterator<Item = u64> + '_ {
    row.iter().map(|&v| (v + 0.0).to_bits())
}

/// Hashes of every row of `x` (`dim` values a row) into (first, second), one row at a time by
/// `hash_row`, in fixed chunks of rows on the thread pool (each row's hashes are its own).
fn hash_rows<T: Sync>(
    x: &[T],
    dim: usize,
    hash_row: impl Fn(&[T]) -> (u64, u64) + Sync + Send,
) -> Result<(Vec<u64>, Vec<u64>), GioError> {
    if dim == 0 {
        return Err(GioError::invalid("x", "rows have no values"));
    }
    if !x.len().is_multiple_of(dim) {
        return Err(GioError::invalid(
            "x",
            format!("length is not a multiple of {dim}"),
        ));
    }
    let n = x.len() / dim;
    let per = rows_per_chunk(dim);
    let mut pairs = vec![(0u64, 0u64); n];
    map_chunks_mut(x.len(), &mut pairs, per, |(c, out)| {
        let rows = x[c * per * dim..].chunks_exact(dim);
        for (slot, row) in out.iter_mut().zip(rows) {
            *slot = hash_row(row);
        }
    });
    Ok(pairs.into_iter().unzip())
}

/// The two hashes of every float32 row of `x` (`dim` values a row).
pub fn row_hashes_f32(x: &[f32], dim: usize) -> Result<(Vec<u64>, Vec<u64>), GioError> {
    let keys = Keys::new(dim.div_ceil(2));
    hash_rows(x, dim, |row| keys.hash(words32(row)))
}

/// The two hashes of every float64 row of `x` in its canonical form, so that equal vectors hash
/// equally whatever dtype their file stores them in: a row whose values are all exactly float32
/// is hashed as that float32 row, any other as float64 (the value beyond float32's range becomes
/// infinite, so it is not exact).
pub fn canonical_hashes_f64(x: &[f64], dim: usize) -> Result<(Vec<u64>, Vec<u64>), GioError> {
    let narrow = Keys::new(dim.div_ceil(2));
    let wide = Keys::new(dim);
    hash_rows(x, dim, |row| {
        if row.iter().all(|&v| f64::from(v as f32) == v) {
            narrow.hash(row.chunks(2).map(|pair| {
                bits32(pair[0] as f32) | pair.get(1).map_or(0, |&v| bits32(v as f32) << 32)
            }))
        } else {
            wide.hash(words64(row))
        }
    })
}

/// The rows that repeat an earlier one among records (first hash, second hash, row): for every
/// group of records with equal hashes, each member but the lowest row as (row, lowest row of its
/// group), in the order of (hashes, row). Rows are expected distinct.
pub fn duplicate_pairs(
    first: &[u64],
    second: &[u64],
    rows: &[i64],
) -> Result<(Vec<i64>, Vec<i64>), GioError> {
    if first.len() != rows.len() || second.len() != rows.len() {
        return Err(GioError::invalid(
            "hashes",
            "first, second and rows must have one value per record",
        ));
    }
    let mut records: Vec<(u64, u64, i64)> = (0..rows.len())
        .map(|i| (first[i], second[i], rows[i]))
        .collect();
    // The key is the whole record: the sorted order is the same whatever the threads.
    if worth_parallel(records.len() * 8) {
        install(|| records.par_sort_unstable());
    } else {
        records.sort_unstable();
    }
    let (mut repeats, mut firsts) = (Vec::new(), Vec::new());
    let mut group_first = 0i64;
    for (i, &(h1, h2, row)) in records.iter().enumerate() {
        if i > 0 && records[i - 1].0 == h1 && records[i - 1].1 == h2 {
            repeats.push(row);
            firsts.push(group_first);
        } else {
            group_first = row;
        }
    }
    Ok((repeats, firsts))
}
