//! The rules an option's value must satisfy, each with the one message that reports it: it starts
//! with the option's name as the user spelled it and reads as the Python API's errors always have
//! ("k: must be >= 1, got 0"). The core's `*Params::check` methods use these; so do the bindings,
//! for the options only Python has, so that no message is written twice.

use std::fmt;

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
    let names: Vec<String> = names.iter().map(|n| str_repr(n)).collect();
    GioError::invalid(
        name,
        format!(
            "unknown {what} {got}; expected one of ({})",
            names.join(", ")
        ),
    )
}

/// A string as Python's `repr` writes it (quotes and escapes).
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (v, text) in [
            (0.0, "0.0"),
            (-0.25, "-0.25"),
            (1.0, "1.0"),
            (0.01, "0.01"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (2.5e300, "2.5e+300"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(FloatRepr(v).to_string(), text);
        }
    }

    #[test]
    fn messages_name_the_option() {
        assert_eq!(
            finite("lr", f64::NAN, None, None).unwrap_err().to_string(),
            "lr: must be finite, got nan"
        );
        assert_eq!(
            finite("p", 1.25, Some(0.0), Some(1.0))
                .unwrap_err()
                .to_string(),
            "p: must be <= 1.0, got 1.25"
        );
        assert_eq!(
            at_least("k", 0usize, 1).unwrap_err().to_string(),
            "k: must be >= 1, got 0"
        );
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'\"\n"), "'a\\'\"\\n'");
        assert_eq!(
            unknown("v", "value", "None", &["a", "b"]).to_string(),
            "v: unknown value None; expected one of ('a', 'b')"
        );
    }
}
