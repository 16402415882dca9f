//! The rules an option's value must satisfy, each with the one message that reports it: it starts
//! with the option's name as the user spelled it and reads as the Python API's errors always have
//! ("k: must be >= 1, got 0"). The core's `*Params::check` methods use these; so do the bindings,
//! for the options only Python has, so that no message is written twice.

use std::fmt;
use std::ops::Deref;

use crate::error::GioError;

/// A float as Python prints it (`str(x)`): `nan`, `inf`, `0.5`, `2.0`, `1e+20`, `1e-05`.
pub struct FloatRepr(pub f64);

impl fmt::Display for FloatRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            return f.write_str("nan");
        }
        // Rust's shortest round-trip form switches to an exponent where Python's does (below 1e-4,
        // from 1e16 up); only the exponent is written differently ("1e16" against "1e+16").
        let text = format!("{:?}", self.0);
        match text.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = exp.strip_prefix('-').map_or(('+', exp), |d| ('-', d));
                write!(f, "{mantissa}e{sign}{digits:0>2}")
            }
            None => f.write_str(&text),
        }
    }
}

/// "must be >= {min}, got {got}": a value below its minimum.
pub fn below(min: impl fmt::Display, got: impl fmt::Display) -> String {
    format!("must be >= {min}, got {got}")
}

/// "must be <= {max}, got {got}": a value above its maximum.
pub fn above(max: impl fmt::Display, got: impl fmt::Display) -> String {
    format!("must be <= {max}, got {got}")
}

/// `value` if it is at least `min`.
pub fn at_least<V: PartialOrd + fmt::Display>(
    name: &'static str,
    value: V,
    min: V,
) -> Result<V, GioError> {
    if value < min {
        return Err(GioError::invalid(name, below(min, value)));
    }
    Ok(value)
}

/// Why `value` is not a finite float within the bounds given, if it is not.
pub fn float_problem(value: f64, min: Option<f64>, max: Option<f64>) -> Option<String> {
    let got = FloatRepr(value);
    if !value.is_finite() {
        Some(format!("must be finite, got {got}"))
    } else if let Some(min) = min.filter(|&min| value < min) {
        Some(below(FloatRepr(min), got))
    } else {
        max.filter(|&max| value > max)
            .map(|max| above(FloatRepr(max), got))
    }
}

/// `value` if it is finite and within the bounds given.
pub fn finite(
    name: &'static str,
    value: f64,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<f64, GioError> {
    match float_problem(value, min, max) {
        Some(problem) => Err(GioError::invalid(name, problem)),
        None => Ok(value),
    }
}

/// A value that is not one of `names`: "v_init: unknown value 'middle'; expected one of ('mean',
/// ...)". `got` is the value as Python's `repr` writes it; `what` says what kind of name it is.
pub fn unknown(name: &'static str, what: &str, got: &str, names: &[&str]) -> GioError {
    let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    GioError::invalid(
        name,
        format!(
            "unknown {what} {got}; expected one of ({})",
            names.join(", ")
        ),
    )
}

/// A choice among names (an option such as `v_init="mean"`).
pub trait Named: Sized + Copy + PartialEq + 'static {
    /// Every name, in the order messages list them.
    const NAMES: &'static [&'static str];
    /// The values, in the order of `NAMES`.
    const VALUES: &'static [Self];

    fn parse(name: &str) -> Option<Self> {
        let i = Self::NAMES.iter().position(|n| *n == name)?;
        Some(Self::VALUES[i])
    }

    fn name(self) -> &'static str {
        let i = Self::VALUES.iter().position(|v| *v == self);
        Self::NAMES[i.expect("every value has a name")]
    }
}

/// Parameters that passed their type's `check`: the only kind the core's algorithms accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<P>(P);

impl<P> Valid<P> {
    /// For `check` methods, once every rule holds.
    pub(crate) fn checked(params: P) -> Self {
        Valid(params)
    }
}

impl<P> Deref for Valid<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}
