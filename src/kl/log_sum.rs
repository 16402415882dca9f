//! Σ log(sqrt(s) + ε) over many squared distances s without a logarithm per term: each term is
//! split into its exponent (summed exactly as an integer) and its mantissa in [1, 2) (multiplied
//! into a running product, renormalised before it can overflow). One multiplication per term
//! instead of a logarithm; each rounds once, so the result is as accurate as a sum of logarithms.

const MANTISSA: u64 = (1 << 52) - 1;
const ONE: u64 = 1023 << 52;

/// Splits a positive normal x into (exponent, mantissa in [1, 2)).
#[inline(always)]
fn split(x: f64) -> (i64, f64) {
    let bits = x.to_bits();
    (
        ((bits >> 52) & 0x7ff) as i64 - 1023,
        f64::from_bits((bits & MANTISSA) | ONE),
    )
}

/// Whether a term splits into a mantissa and an exponent: zero, subnormal, infinite and NaN
/// terms (never from clipped distances and a valid ε) do not.
#[inline(always)]
fn splits(term: f64) -> bool {
    (f64::MIN_POSITIVE..f64::INFINITY).contains(&term)
}

/// `Σ log(sqrt(s) + eps)` over `sq`, as a product of mantissas renormalised every 256 terms and
/// a sum of exponents. NaN if any term is NaN.
pub fn log_root_sum(sq: &[f64], eps: f64) -> f64 {
    let (mut exponent, mut product, mut bad) = (0i64, 1.0f64, false);
    for chunk in sq.chunks(256) {
        for &s in chunk {
            let term = s.sqrt() + eps;
            bad |= !splits(term);
            let (e, m) = split(term);
            exponent += e;
            product *= m;
        }
        let (e, m) = split(product);
        exponent += e;
        product = m;
    }
    if bad {
        return sq.iter().map(|&s| (s.sqrt() + eps).ln()).sum();
    }
    product.ln() + exponent as f64 * std::f64::consts::LN_2
}

/// Lanes of `LogRootSum`: independent product chains, so terms need not wait for the previous
/// multiplication, and the loop over 8 terms vectorises.
const LANES: usize = 8;
/// Groups of `LANES` terms between renormalisations: each lane's product of mantissas in [1, 2)
/// stays below 2^GROUPS.
const GROUPS: u32 = 128;

/// A running `Σ log(sqrt(s) + eps)` fed in groups of 8 terms (term l of a group to lane l) and
/// shorter tails (to lanes 0, 1, ...): the same terms fed in the same groups give the same bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogRootSum {
    exponent: [i64; LANES],
    product: [f64; LANES],
    /// Groups multiplied in since the last renormalisation.
    groups: u32,
    /// Terms that do not split (see `splits`), summed as logarithms.
    direct: f64,
}

impl LogRootSum {
    pub const EMPTY: LogRootSum = LogRootSum {
        exponent: [0; LANES],
        product: [1.0; LANES],
        groups: 0,
        direct: 0.0,
    };

    /// Adds the terms of `sq` in groups of 8, then the tail.
    #[inline]
    pub fn add(&mut self, sq: &[f64], eps: f64) {
        let mut groups = sq.chunks_exact(LANES);
        for group in &mut groups {
            let terms: [f64; LANES] = std::array::from_fn(|l| group[l].sqrt() + eps);
            if terms.iter().all(|&t| splits(t)) {
                for (l, &t) in terms.iter().enumerate() {
                    let (e, m) = split(t);
                    self.exponent[l] += e;
                    self.product[l] *= m;
                }
            } else {
                self.add_terms(&terms);
            }
            self.count_group();
        }
        let tail = groups.remainder();
        if !tail.is_empty() {
            let mut terms = [0.0; LANES];
            for (t, &s) in terms.iter_mut().zip(tail) {
                *t = s.sqrt() + eps;
            }
            self.add_terms(&terms[..tail.len()]);
            self.count_group();
        }
    }

    /// Terms one at a time, to lanes 0, 1, ...: split where they split, else logarithms.
    fn add_terms(&mut self, terms: &[f64]) {
        for (l, &t) in terms.iter().enumerate() {
            if splits(t) {
                let (e, m) = split(t);
                self.exponent[l] += e;
                self.product[l] *= m;
            } else {
                self.direct += t.ln();
            }
        }
    }

    #[inline]
    fn count_group(&mut self) {
        self.groups += 1;
        if self.groups == GROUPS {
            self.renormalise();
        }
    }

    fn renormalise(&mut self) {
        for (e, p) in self.exponent.iter_mut().zip(&mut self.product) {
            let (pe, pm) = split(*p);
            *e += pe;
            *p = pm;
        }
        self.groups = 0;
    }

    /// The sum so far: lanes' logarithms in lane order, then the exponents and the direct terms.
    pub fn value(&self) -> f64 {
        let mut this = *self;
        this.renormalise();
        let logs: f64 = this.product.iter().map(|p| p.ln()).sum();
        let exponent: i64 = this.exponent.iter().sum();
        logs + exponent as f64 * std::f64::consts::LN_2 + this.direct
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(sq: &[f64], eps: f64) -> f64 {
        sq.iter().map(|&s| (s.sqrt() + eps).ln()).sum()
    }

    #[test]
    fn lanes_agree_with_logarithms_over_many_groups_and_tails() {
        // Enough groups to renormalise several times; squared distances over 60 decades.
        let sq: Vec<f64> = (0..5000)
            .map(|i| 10f64.powf(((i * 37) % 61) as f64 - 30.0) * (1.0 + (i as f64).sin().abs()))
            .collect();
        for cut in [0, 1, 7, 8, 9, 33, 4999] {
            let mut acc = LogRootSum::EMPTY;
            acc.add(&sq[..cut], 1e-8);
            acc.add(&sq[cut..], 1e-8);
            let want = naive(&sq, 1e-8);
            assert!(
                (acc.value() - want).abs() <= 1e-12 * want.abs(),
                "cut {cut}: {} vs {want}",
                acc.value()
            );
        }
    }

    #[test]
    fn terms_that_do_not_split_are_summed_as_logarithms() {
        let mut acc = LogRootSum::EMPTY;
        acc.add(&[1.0, 0.0, 4.0, 9.0, 1.0, 1.0, 1.0, 1.0, 16.0], 0.0);
        assert_eq!(acc.value(), f64::NEG_INFINITY);
        let mut acc = LogRootSum::EMPTY;
        acc.add(&[1.0, f64::NAN, 4.0], 0.0);
        assert!(acc.value().is_nan());
        let mut acc = LogRootSum::EMPTY;
        acc.add(&[4.0, 0.0, 1e-200, 4.0, 4.0, 4.0, 4.0, 4.0], 1e-310);
        let want = naive(&[4.0, 0.0, 1e-200, 4.0, 4.0, 4.0, 4.0, 4.0], 1e-310);
        assert!((acc.value() - want).abs() <= 1e-12 * want.abs());
    }
}
