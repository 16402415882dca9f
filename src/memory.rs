//! Working-set estimates: the bytes a call allocates on top of the caller's arrays, so that the
//! Python layer can refuse work over its memory budget before starting it. Each estimate lives
//! next to the allocations it describes (`selection::working_set`, `kmeans::fit_working_set`,
//! `kmeans::predict_working_set`) and is an upper bound of the measured peak that
//! tests/test_memory.py checks (and keeps within 2× of it). This module holds what they share.

/// What any call allocates besides its large buffers (small vectors, thread stacks touched).
pub const BASE_BYTES: usize = 4 << 20;

/// Σ terms, each a product of factors; saturates instead of overflowing for absurd sizes (the
/// budget check then refuses the call).
pub fn bytes(terms: &[&[usize]]) -> usize {
    terms.iter().fold(0usize, |total, factors| {
        let term = factors.iter().fold(1usize, |p, &f| p.saturating_mul(f));
        total.saturating_add(term)
    })
}
