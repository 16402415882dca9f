//! The scoring pass (s_i = w·x_i + b for every row), Gumbel keys for seeded importance
//! resampling, and a bounded top-B that keeps the best keys across batches.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::parallel::map_row_chunks;
use crate::rows::{Element, Rows};
use crate::simd::dot;

/// w·x_i + bias for every row, in float64 (`simd::dot`: one value per row whatever the chunking,
/// so identical for any thread count and fused SIMD level).
pub fn linear_scores<T: Element>(rows: Rows<'_, T>, w: &[f64], bias: f64) -> Vec<f64> {
    assert_eq!(w.len(), rows.dim());
    map_row_chunks(rows.len(), rows.dim(), |start, end| {
        (start..end)
            .map(|i| dot(rows.row(i), w) + bias)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// U_i in (0, 1) for row `row`: the (row + 1)-th output of `rng::SplitMix64::new(seed)`
/// (computed directly: z = seed + (row + 1)·γ mod 2⁶⁴, then SplitMix64's finaliser), its top 53
/// bits as (h + ½) / 2⁵³. A pure function of (seed, row): any batching gives the same draws.
pub fn uniform_at(seed: u64, row: u64) -> f64 {
    let mut z = seed.wrapping_add(row.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Gumbel(0, 1) noise for row `row`: −ln(−ln U_row).
pub fn gumbel_at(seed: u64, row: u64) -> f64 {
    -(-uniform_at(seed, row).ln()).ln()
}

/// log r_i + G_i for rows `first_row..first_row + log_ratio.len()`: the B largest keys are an
/// importance resample of B rows without replacement, with probabilities ∝ r (Gumbel top-k).
pub fn gumbel_keys(log_ratio: &[f64], seed: u64, first_row: usize) -> Vec<f64> {
    log_ratio
        .iter()
        .enumerate()
        .map(|(i, &l)| l + gumbel_at(seed, (first_row + i) as u64))
        .collect()
}

/// A key with its global row index, ordered best first: larger key, then lower row. NaN ranks
/// below every number.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    key: f64,
    row: usize,
}

impl Ranked {
    fn sort_key(&self) -> f64 {
        if self.key.is_nan() {
            f64::NEG_INFINITY
        } else {
            self.key
        }
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    /// `Less` means better (so a max-heap's root is the worst kept entry).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .sort_key()
            .total_cmp(&self.sort_key())
            .then(self.row.cmp(&other.row))
            .then(other.key.is_nan().cmp(&self.key.is_nan()))
    }
}

/// The `capacity` best (key, row) pairs seen: larger keys first, ties to the lower global row
/// index. The result depends only on the pairs pushed, not on their order or batching.
#[derive(Debug, Clone)]
pub struct TopB {
    capacity: usize,
    heap: BinaryHeap<Ranked>,
}

impl TopB {
    pub fn new(capacity: usize) -> Self {
        TopB {
            capacity,
            heap: BinaryHeap::with_capacity(capacity.min(1 << 20) + 1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn offer(&mut self, entry: Ranked) {
        if self.heap.len() < self.capacity {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if entry < *worst {
                *worst = entry;
            }
        }
    }

    /// Offers `keys[i]` for global row `first_row + i`.
    pub fn push(&mut self, keys: &[f64], first_row: usize) {
        for (i, &key) in keys.iter().enumerate() {
            self.offer(Ranked {
                key,
                row: first_row + i,
            });
        }
    }

    /// Offers every pair `other` kept (e.g. another partition's top-B).
    pub fn merge(&mut self, other: &TopB) {
        for &entry in other.heap.iter() {
            self.offer(entry);
        }
    }

    /// The kept rows and keys, best first.
    pub fn finish(self) -> (Vec<usize>, Vec<f64>) {
        let sorted = self.heap.into_sorted_vec();
        sorted.iter().map(|e| (e.row, e.key)).unzip()
    }
}
