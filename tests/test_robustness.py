"""Hostile input to every public entry point: each call either succeeds with finite results or
raises GioError/TypeError whose message starts with the name of an argument; nothing crashes,
hangs or mutates its input. Shapes include 0 and 1 rows/columns; dtypes float16/32/64, ints,
bool, complex, object, text; NaN/±inf anywhere; Fortran-ordered, strided, read-only arrays,
lists; huge (1e30) and tiny (1e-30) magnitudes; duplicate rows; options at and past their bounds.

The number of generated cases run is printed at the end of the test session."""

from __future__ import annotations

import contextlib
import copy
import io
import math
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gio_rs
import gio_rs.embed
from gio_rs import GioError
from gio_rs import cli as gio_cli

DTYPES = [
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.int32,
    np.uint8,
    np.bool_,
    np.complex128,
    object,
    str,
]
FLOAT_DTYPES = [np.float64, np.float32]
LAYOUTS = ["C", "F", "strided", "readonly", "list"]
CASES: dict[str, int] = {}


def count_case(name: str) -> None:
    CASES[name] = CASES.get(name, 0) + 1


@st.composite
def matrices(
    draw: Any, *, rows: st.SearchStrategy = None, cols: st.SearchStrategy = None, dtypes=None
) -> Any:
    """A hostile 2-D-ish array-like (sometimes 1-D or 3-D)."""
    n = draw(rows if rows is not None else st.integers(0, 7))
    d = draw(cols if cols is not None else st.integers(0, 4))
    dtype = draw(st.sampled_from(dtypes or DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 1e30, 1e-30, 3e38, 1e-300]))
    values = rng.normal(size=(n, d)) * scale
    if n > 1 and draw(st.booleans()):  # duplicate rows
        values[rng.integers(0, n, size=n // 2)] = values[0]
    if n and d and draw(st.integers(0, 4)) == 0:  # NaN / ±inf anywhere
        values[rng.integers(0, n), rng.integers(0, d)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    shape_kind = draw(st.sampled_from(["2d"] * 8 + ["1d", "3d"]))
    if dtype is str:
        arr: Any = values.astype(str)
    elif dtype is object:
        arr = values.astype(object)
        if n and d:
            arr[0, 0] = draw(st.sampled_from([None, "x", 1.5]))
    else:
        with np.errstate(all="ignore"):
            arr = values.astype(dtype)
    if shape_kind == "1d":
        arr = arr.reshape(-1)
    elif shape_kind == "3d":
        arr = arr.reshape(n, d, 1)
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided" and arr.ndim == 2:
        wide = np.zeros((arr.shape[0], arr.shape[1] * 2), dtype=arr.dtype)
        wide[:, ::2] = arr
        arr = wide[:, ::2]
    elif layout == "readonly":
        arr = np.array(arr)
        arr.flags.writeable = False
    elif layout == "list":
        arr = arr.tolist()
    return arr


def good_matrix(rows: st.SearchStrategy, cols: int) -> st.SearchStrategy:
    return matrices(rows=rows, cols=st.just(cols), dtypes=FLOAT_DTYPES)


def snapshot(value: Any) -> Any:
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else copy.deepcopy(value)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind == "O":  # NaN != NaN elementwise: compare the printed values
            return repr(a.tolist()) == repr(b.tolist())
        return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    return repr(a) == repr(b)


def all_finite(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, (int, float, np.integer, np.floating)):
        return math.isfinite(float(value))
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.isfinite(value).all())
    if isinstance(value, (list, tuple)):
        return all(all_finite(v) for v in value)
    if isinstance(value, gio_rs.Selection):
        return all(
            all_finite(getattr(value, f))
            for f in ("indices", "kl_trace", "kl_start", "candidate_kl", "init", "scale_factor")
        )
    return True


def check(name: str, call: Callable[[], Any], inputs: list, arg_names: set[str]) -> Any:
    """Run `call`; accept a finite result or GioError/TypeError naming an argument; inputs intact."""
    count_case(name)
    before = [snapshot(x) for x in inputs]
    try:
        out = call()
    except (GioError, TypeError) as exc:
        message = str(exc)
        head = message.split(":", 1)[0]
        assert ":" in message and head in arg_names, f"{name}: message does not name an argument: {message!r}"
        out = None
    else:
        assert all_finite(out), f"{name}: non-finite result {out!r}"
    for x, b in zip(inputs, before):
        assert same(x, b), f"{name}: an input was modified"
    return out


ints = st.one_of(st.integers(-2, 8), st.sampled_from([2**31, 2**63 - 1, 2**64]), st.just(1.5), st.just(True))
# Counts of work (steps): past the bounds, but never a request for 2**31 real iterations.
step_counts = st.one_of(st.integers(-2, 8), st.sampled_from([2**64, 2**100]), st.just(1.5), st.just(True))
floats = st.one_of(
    st.sampled_from([0.0, -1.0, 1e-30, 1e30, math.nan, math.inf, -math.inf, 0.5, 1.0, 1.0000001]),
    st.floats(-10, 10),
)


@given(x=matrices(), y=matrices(), k=ints, eps=floats, discard=st.booleans())
def test_kl_divergence(x, y, k, eps, discard):
    check(
        "kl_divergence",
        lambda: gio_rs.kl_divergence(x, y, k, eps=eps, discard_nearest_for_xy=discard),
        [x, y],
        {"x", "y", "k", "eps", "discard_nearest_for_xy"},
    )


@given(x=matrices(), y=matrices(), k=ints)
def test_knn_kl_divergence(x, y, k):
    """NaN is this estimator's documented answer when y has fewer than k rows."""
    count_case("knn_kl_divergence")
    before = [snapshot(x), snapshot(y)]
    try:
        out = gio_rs.knn_kl_divergence(x, y, k)
    except (GioError, TypeError) as exc:
        assert str(exc).split(":", 1)[0] in {"x", "y", "k"}, str(exc)
    else:
        rows = len(y) if isinstance(y, (list, np.ndarray)) else 0
        assert math.isfinite(out) or (math.isnan(out) and rows < k), out
    assert same(x, before[0]) and same(y, before[1])


@given(x=matrices(), w=matrices(), v=matrices(), discard=st.booleans())
def test_kl_gradient(x, w, v, discard):
    v = v[0] if isinstance(v, np.ndarray) and v.ndim == 2 and len(v) else v
    check(
        "kl_gradient",
        lambda: gio_rs.kl_gradient(x, w, v, discard_nearest_for_xy=discard),
        [x, w, v],
        {"x", "w", "v", "discard_nearest_for_xy"},
    )


STOPS = [
    "increase",
    "min_difference",
    "sequential_increase_tolerance",
    "max_resets",
    "min_kl",
    "data_size",
    "bogus",
]
SELECT_NAMES = set(
    "train target init k max_iter stop_criterion min_difference resets_allowed max_resets max_data_size "
    "min_kl max_sequential_increases random_init_pct random_restart_prob scale_factor v_init grad_desc_iter "
    "discard_nearest_for_xy lr uniform_low uniform_high uniform_start_size normalize seed n_clusters "
    "n_clusters_target kmeans_max_iter method".split()
)


@st.composite
def select_options(draw: Any) -> dict:
    options = {
        "k": draw(ints),
        "max_iter": draw(st.sampled_from([0, 1, 3, -1])),
        "stop_criterion": draw(st.sampled_from(STOPS)),
        "min_difference": draw(floats),
        "resets_allowed": draw(st.booleans()),
        "max_resets": draw(st.sampled_from([0, 1, 2, -1])),
        "max_data_size": draw(st.sampled_from([0.0, 0.3, 1.0, 1.5, -0.1, math.nan])),
        "min_kl": draw(floats),
        "random_init_pct": draw(st.sampled_from([0.0, 0.5, 1.0, 1.1, -0.1])),
        "random_restart_prob": draw(st.sampled_from([0.0, 0.5, 1.0, 1.1])),
        "scale_factor": draw(st.sampled_from(["auto", 1.0, 0.0, -1.0, 1e30, math.nan, "big"])),
        "v_init": draw(st.sampled_from(["mean", "prev_opt", "jump", "nope"])),
        "grad_desc_iter": draw(st.sampled_from([0, 1, 3, -1])),
        "discard_nearest_for_xy": draw(st.booleans()),
        "lr": draw(floats),
        "uniform_start_size": draw(st.sampled_from([1, 3, 0])),
        "seed": draw(st.sampled_from([0, 1, None, -1])),
    }
    if draw(st.integers(0, 3)) == 0:  # the exact greedy method rejects gradient-only options
        options = {k: v for k, v in options.items() if draw(st.booleans())}
        options["method"] = draw(st.sampled_from(["greedy", "greedy", "bogus"]))
    if draw(st.integers(0, 3)) == 0:
        options["n_clusters"] = draw(st.sampled_from([1, 2, 3, 0, 100]))
        options["kmeans_max_iter"] = draw(st.sampled_from([1, 5, 0]))
    return options


@given(
    train=matrices(rows=st.integers(0, 8)),
    target=matrices(rows=st.integers(0, 6)),
    init=st.one_of(st.none(), matrices(rows=st.integers(0, 3))),
    options=select_options(),
)
def test_select(train, target, init, options):
    check(
        "select",
        lambda: gio_rs.select(train, target, init=init, **options),
        [train, target, init],
        SELECT_NAMES,
    )


@given(
    train=good_matrix(st.integers(1, 8), 3),
    target=good_matrix(st.integers(2, 6), 3),
    options=select_options(),
)
def test_select_valid_shapes(train, target, options):
    """Mostly well-formed data: the options do the probing."""
    check(
        "select (valid shapes)",
        lambda: gio_rs.select(train, target, **options),
        [train, target],
        SELECT_NAMES,
    )


@given(
    train=matrices(rows=st.integers(0, 8)),
    x=matrices(rows=st.integers(0, 6)),
    d=st.one_of(st.none(), matrices(rows=st.integers(1, 3))),
    options=select_options(),
)
def test_giokl_fit(train, x, d, options):
    options = {
        k: v
        for k, v in options.items()
        if k not in ("seed", "n_clusters", "kmeans_max_iter", "uniform_start_size", "method")
    }
    model = gio_rs.GIOKL(dim=3, seed=0, verbose=False)
    names = (SELECT_NAMES - {"train", "target", "init"}) | {"train", "X", "D"}
    check("GIOKL.fit", lambda: model.fit(train, x, D=d, **options), [train, x, d], names)


@given(x=matrices(), w=matrices(), v=matrices(), scale=floats, steps=step_counts, lr=floats)
def test_giokl_gradient_descend(x, w, v, scale, steps, lr):
    v = v[0] if isinstance(v, np.ndarray) and v.ndim == 2 and len(v) else v
    model = gio_rs.GIOKL(dim=3, verbose=False)
    names = {"X", "W", "v", "scaling_factor", "max_iterations", "lr", "k"}
    check(
        "GIOKL.gradient_descend",
        lambda: model.gradient_descend(x, w, v, scale, steps, lr=lr),
        [x, w, v],
        names,
    )


@given(
    x=matrices(rows=st.integers(0, 9)),
    other=matrices(rows=st.integers(0, 4)),
    n_clusters=ints,
    init=st.one_of(st.sampled_from(["k-means++", "random", "bogus"]), matrices(rows=st.integers(0, 4))),
    n_init=st.sampled_from([1, 2, 0]),
    max_iter=st.sampled_from([1, 5, 0]),
    tol=floats,
    random_state=st.sampled_from([0, 7, None, -1]),
    init_sample_size=st.sampled_from([None, 1, 5, 0]),
)
def test_kmeans(x, other, n_clusters, init, n_init, max_iter, tol, random_state, init_sample_size):
    names = {
        "X",
        "n_clusters",
        "init",
        "n_init",
        "max_iter",
        "tol",
        "random_state",
        "init_sample_size",
        "KMeans",
    }
    model = gio_rs.KMeans(
        n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        init_sample_size=init_sample_size,
    )
    fitted = check("KMeans.fit", lambda: model.fit(x), [x, init], names)
    if fitted is not None:
        assert np.isfinite(fitted.cluster_centers_).all() and math.isfinite(fitted.inertia_)
    for method in ("predict", "transform", "score"):
        check(f"KMeans.{method}", lambda method=method: getattr(model, method)(other), [other], names)


@given(
    train=matrices(rows=st.integers(0, 9)),
    target=matrices(rows=st.integers(0, 5)),
    n_clusters=ints,
    n_clusters_target=st.sampled_from([None, 1, 2, 0]),
    seed=st.sampled_from([0, None, -1]),
    chosen=st.lists(st.integers(-1, 10), max_size=5),
)
def test_quantize_and_explode(train, target, n_clusters, n_clusters_target, seed, chosen):
    names = {"train", "target", "n_clusters", "n_clusters_target", "seed", "X", "max_iter", "chosen_clusters"}
    q = check(
        "quantize",
        lambda: gio_rs.quantize(train, target, n_clusters, n_clusters_target=n_clusters_target, seed=seed),
        [train, target],
        names,
    )
    labels = q.train_labels if q is not None else np.array([0, 1, 1], dtype=np.int64)
    out = check("explode", lambda: gio_rs.explode(chosen, labels), [chosen, labels], names | {"labels"})
    if out is not None:
        assert set(out.indices.tolist()) == set(np.flatnonzero(np.isin(labels, chosen)).tolist())


@given(
    train=matrices(rows=st.integers(0, 8), dtypes=DTYPES[:7]),
    target=matrices(rows=st.integers(0, 6), dtypes=DTYPES[:7]),
    k=st.sampled_from(["1", "3", "0", "9"]),
    stop=st.sampled_from(["increase", "data_size", "bogus"]),
    clusters=st.sampled_from([None, "2", "0"]),
)
def test_cli_select(tmp_path_factory, train, target, k, stop, clusters):
    """The command on hostile .npy files: exit 0 with the outputs, or exit 2 with one error line
    naming a file or flag and no output."""
    folder = tmp_path_factory.mktemp("cli")
    paths = []
    for name, value in (("train", train), ("target", target)):
        path = folder / f"{name}.npy"
        np.save(path, np.asarray(value), allow_pickle=False)
        paths.append(str(path))
    out = folder / "out.parquet"
    argv = ["select", "--train", paths[0], "--target", paths[1], "--out", str(out), "--quiet"]
    argv += ["--k", k, "--stop", stop, "--max-iter", "3", "--grad-desc-iter", "2"]
    if clusters is not None:
        argv += ["--clusters", clusters, "--kmeans-max-iter", "3"]
    count_case("gio-rs select")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = gio_cli.main(argv)
    err = stderr.getvalue()
    if code == 0:
        assert out.exists() and (folder / "out.summary.json").exists()
    else:
        assert code == gio_cli.EXIT_ERROR, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("gio-rs: error: "), err
        named = line[len("gio-rs: error: ") :].split(":", 1)[0]
        assert named in paths or named in SELECT_NAMES or named.startswith("--"), line
        assert not out.exists()


HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\ud800 lone surrogate", "\u202e\u0301", "🙂" * 30, "word " * 400]),
)


@pytest.fixture(scope="module")
def encoder():
    from gio_rs.embed import load_model  # needs the text extra and the packaged model

    return load_model()


@given(
    sentences=st.one_of(
        st.lists(HOSTILE_TEXT, max_size=5),
        st.lists(st.one_of(HOSTILE_TEXT, st.sampled_from([None, 3, b"bytes", 1.5])), min_size=1, max_size=3),
        st.sampled_from(["a bare string", b"bytes", None, 42]),
    ),
    batch_size=ints,
    max_length=st.sampled_from([None, 1, 2, 3, 16, 512, 513, 0, -1, 1.5]),
)
def test_embed(encoder, sentences, batch_size, max_length):
    """Any text embeds to finite unit rows, in order; anything else is refused by name."""
    out = check(
        "embed",
        lambda: gio_rs.embed.embed(sentences, model=encoder, batch_size=batch_size, max_length=max_length),
        [sentences],
        {"sentences", "batch_size", "max_length"},
    )
    if out is not None:
        assert out.shape == (len(sentences), 384) and out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.lists(HOSTILE_TEXT.filter(lambda t: "\ud800" not in t), max_size=4).map(
            lambda lines: "\r\n".join(lines).encode("utf-8")
        ),
    ),
    bom=st.booleans(),
)
def test_cli_embed(tmp_path_factory, encoder, content, bom):
    """`gio-rs embed` on hostile text files: one row per line, or exit 2 naming the file."""
    folder = tmp_path_factory.mktemp("embed")
    path, out = folder / "in.txt", folder / "out.npy"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + content)
    count_case("gio-rs embed")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = gio_cli.main(["embed", "--in", str(path), "--out", str(out), "--quiet"])
    if code == 0:
        rows = np.load(out)
        assert rows.shape == (len(gio_rs.embed.read_sentences(path)), 384) and np.isfinite(rows).all()
    else:
        assert code == gio_cli.EXIT_ERROR
        line = stderr.getvalue().strip().splitlines()[-1]
        assert line.startswith(f"gio-rs: error: path: {path} is not UTF-8 text"), line
        assert not out.exists()


@pytest.fixture(scope="session", autouse=True)
def report_case_count(request):
    yield
    if CASES:
        total = sum(CASES.values())
        lines = [f"robustness: {total} generated cases run"] + [
            f"  {n}: {c}" for n, c in sorted(CASES.items())
        ]
        request.config.pluginmanager.get_plugin("terminalreporter").write_line("\n".join(lines))
