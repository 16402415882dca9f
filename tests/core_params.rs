//! The messages for option values and the finiteness scan: Python's wording, each argument named.

use gio_rs::params::{at_least, finite, unknown, FloatRepr};
use gio_rs::rows::nonfinite_problem;

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
    assert_eq!(
        unknown("v", "value", "None", &["a", "b"]).to_string(),
        "v: unknown value None; expected one of ('a', 'b')"
    );
}

#[test]
fn nonfinite_problem_lists_the_first_rows() {
    // Small (serial) and large (parallel, many chunks) inputs, bad values in several chunks:
    // the first rows in order are listed, each once, at most ten.
    for (n, dim) in [(7usize, 3usize), (50_000, 10)] {
        let mut data = vec![1.0f32; n * dim];
        assert_eq!(nonfinite_problem(&data, dim, "rows"), None);
        data[n * dim - 1] = f32::INFINITY;
        data[4] = f32::NAN;
        data[5] = f32::NAN; // the same row again
        let got = nonfinite_problem(&data, dim, "rows").unwrap();
        let expected = format!("rows {}, {})", 4 / dim, n - 1);
        assert_eq!(got, format!("contains NaN or infinite values ({expected}"));
        let wide: Vec<f64> = data.iter().map(|&v| v as f64).collect();
        assert_eq!(nonfinite_problem(&wide, dim, "rows"), Some(got));
    }
    let mut many = vec![0.0f64; 40];
    for v in many.iter_mut().step_by(3) {
        *v = f64::NEG_INFINITY;
    }
    assert_eq!(
        nonfinite_problem(&many, 1, "positions").unwrap(),
        "contains NaN or infinite values (positions 0, 3, 6, 9, 12, 15, 18, 21, 24, 27, ...)"
    );
}
