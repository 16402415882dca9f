//! The exact-duplicate kernels: equal rows hash equally (signed zeros, a float64 row of float32
//! values as that float32 row), different rows do not, groups name their lowest row, and bad
//! shapes are refused. Bit-exactness against the NumPy reference is checked in
//! tests/test_dedup_hashes.py.

use gio_rs::rowhash::{canonical_hashes_f64, duplicate_pairs, row_hashes_f32};

#[test]
fn equal_rows_hash_equally_and_others_do_not() {
    let x = [1.5f32, -0.0, 2.0, 1.5, 0.0, 2.0, 1.5, 0.0, 2.000_001];
    let (h1, h2) = row_hashes_f32(&x, 3).unwrap();
    assert_eq!((h1[0], h2[0]), (h1[1], h2[1]));
    assert_ne!(h1[0], h1[2]);
    assert_ne!(h2[0], h2[2]);
}

#[test]
fn a_float64_row_of_float32_values_hashes_as_float32() {
    let narrow = [0.25f32, -3.0, 7.0];
    let wide = [0.25f64, -3.0, 7.0, 0.1, -3.0, 7.0];
    let (f1, f2) = row_hashes_f32(&narrow, 3).unwrap();
    let (w1, w2) = canonical_hashes_f64(&wide, 3).unwrap();
    assert_eq!((w1[0], w2[0]), (f1[0], f2[0]));
    let inexact = [0.1f32, -3.0, 7.0]; // 0.1 is not a float32: the float64 row differs
    let (i1, _) = row_hashes_f32(&inexact, 3).unwrap();
    assert_ne!(w1[1], i1[0]);
}

#[test]
fn groups_report_every_repeat_with_its_lowest_row() {
    let first = [5u64, 9, 5, 5, 9, 1];
    let second = [1u64, 2, 1, 1, 2, 1];
    let rows = [40i64, 3, 7, 12, 8, 0];
    let (repeats, firsts) = duplicate_pairs(&first, &second, &rows).unwrap();
    assert_eq!(repeats, vec![12, 40, 8]);
    assert_eq!(firsts, vec![7, 7, 3]);
    let (none, _) = duplicate_pairs(&[1, 1], &[1, 2], &[0, 1]).unwrap();
    assert!(none.is_empty());
}

#[test]
fn bad_shapes_are_refused() {
    assert!(row_hashes_f32(&[1.0; 5], 2).is_err());
    assert!(canonical_hashes_f64(&[], 0).is_err());
    assert!(duplicate_pairs(&[1, 2], &[1], &[0, 1]).is_err());
    assert_eq!(row_hashes_f32(&[], 4).unwrap().0.len(), 0);
}
