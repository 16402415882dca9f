"""Options and flags no other test ran for real: `simd_level()`, `select(record_v_opts=True)`, the
uniform start's bounds, `KMeans(tol=, init_sample_size=)`, and the command line's format, column,
progress, version, method, table-cap, start and embed/demo flags. Each runs and its output is
checked against an independent expectation: the NumPy oracle, the real reference's fixture, the
CPU's own description, or a value computed here."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_blobs

import gio_rs
from gio_rs import cli, reference

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ simd_level


def expected_simd_level(env: dict) -> str:
    """What the dispatch must pick, from /proc/cpuinfo's flags and the two switches."""
    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if "GIO_RS_NO_SIMD" in env:
        return "scalar"
    if {"avx512f", "fma"} <= flags and "GIO_RS_NO_AVX512" not in env:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "scalar"


@pytest.mark.parametrize("switch", [None, "GIO_RS_NO_AVX512", "GIO_RS_NO_SIMD"])
def test_simd_level_follows_the_cpu_and_the_switches(switch):
    env = {k: v for k, v in os.environ.items() if k not in ("GIO_RS_NO_AVX512", "GIO_RS_NO_SIMD")}
    if switch:
        env[switch] = "1"
    code = "import gio_rs; print(gio_rs.simd_level())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == expected_simd_level(env)
    assert gio_rs.simd_level() == expected_simd_level(os.environ)


# --------------------------------------------------------------------------------- select options


def test_record_v_opts_gives_the_reference_v_after_every_descent(reference_npz):
    """fit0 of the real reference (data_size ending on max_iter: no fix of select applies): v after
    each of its 32 descents."""
    z, meta = reference_npz
    kwargs = dict(meta["fit_cases"][0]["fit_kwargs"])
    kwargs.pop("random_init_pct")
    train, X, D = (z[f"fit0_{key}"] for key in ("train", "X", "D"))
    sel = gio_rs.select(train, X, init=D, record_v_opts=True, **kwargs)
    np.testing.assert_allclose(sel.v_opts, z["fit0_f64_vopt"], rtol=0, atol=1e-6)
    assert gio_rs.select(train, X, init=D, **kwargs).v_opts is None


def test_uniform_start_bounds_and_normalisation():
    """Without init: `uniform_start_size` rows of np.random.RandomState(seed).uniform(low, high),
    each divided by its norm when normalize (the reference's start), in select and in GIOKL."""
    rng = np.random.default_rng(1)
    train, target = rng.normal(size=(40, 3)), rng.normal(3.0, 1.0, size=(12, 3))
    raw = np.random.RandomState(4).uniform(2.0, 5.0, size=(6, 3))
    for normalize in (False, True):
        expected = raw / np.linalg.norm(raw, axis=1, keepdims=True) if normalize else raw
        sel = gio_rs.select(train, target, uniform_low=2.0, uniform_high=5.0, uniform_start_size=6,
                            normalize=normalize, seed=4, max_iter=1, k=2)  # fmt: skip
        np.testing.assert_array_equal(sel.init, expected)
        model = gio_rs.GIOKL(
            uniform_low=2.0, uniform_high=5.0, uniform_start_size=6, dim=3, seed=4, verbose=False
        )
        W, _, _ = model.fit(train, target, max_iter=1, k=2, normalize=normalize)
        np.testing.assert_array_equal(W[:6], expected)


def test_kmeans_tol_and_init_sample_size():
    X = make_blobs(3000, centers=5, n_features=8, random_state=2)[0]
    start = X[:5]
    # A tolerance no move can exceed stops after one Lloyd step: the means of the rows nearest to
    # each start.
    nearest = ((X[:, None, :] - start[None]) ** 2).sum(axis=2).argmin(axis=1)
    one = gio_rs.KMeans(5, init=start, tol=1e9).fit(X)
    assert one.n_iter_ == 1
    np.testing.assert_allclose(
        one.cluster_centers_, [X[nearest == j].mean(axis=0) for j in range(5)], rtol=1e-12
    )
    # tol=0 goes on until no label changes: a Lloyd fixed point.
    exact = gio_rs.KMeans(5, init=start, tol=0.0, max_iter=500).fit(X)
    assert 1 < exact.n_iter_ < 500
    sq = ((X[:, None, :] - exact.cluster_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(exact.labels_, sq.argmin(axis=1))
    np.testing.assert_allclose(exact.cluster_centers_, [X[exact.labels_ == j].mean(axis=0) for j in range(5)])
    # k-means++ looks at a seeded sample of init_sample_size rows: any size from N on is all rows.
    N = len(X)
    for seed in range(3):
        whole = gio_rs.KMeans(5, random_state=seed, init_sample_size=N, max_iter=1).fit(X)
        more = gio_rs.KMeans(5, random_state=seed, init_sample_size=10 * N, max_iter=1).fit(X)
        np.testing.assert_array_equal(whole.cluster_centers_, more.cluster_centers_)
    small = [gio_rs.KMeans(5, random_state=s, init_sample_size=5, max_iter=1).fit(X) for s in range(3)]
    whole = [gio_rs.KMeans(5, random_state=s, init_sample_size=N, max_iter=1).fit(X) for s in range(3)]
    assert any(not np.array_equal(a.cluster_centers_, b.cluster_centers_) for a, b in zip(small, whole))


# ---------------------------------------------------------------------------------- command line

OPTIONS = {"k": 3, "stop_criterion": "data_size", "max_data_size": 0.1, "v_init": "jump", "scale_factor": 0.5}
FLAGS = [
    "--k",
    "3",
    "--stop",
    "data_size",
    "--max-data-size",
    "0.1",
    "--v-init",
    "jump",
    "--scale-factor",
    "0.5",
]


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(5)
    return {
        "pool": rng.normal(size=(80, 4)),
        "target": rng.normal(0.8, 0.7, size=(20, 4)),
        "init": rng.normal(-1.0, 0.5, size=(3, 4)),
    }


def oracle(pool, target, start, seed, **options):
    """The NumPy oracle's select (fixed semantics). Its picks must not change when the target moves
    by ±1e-12 (a well-conditioned run), so an exact comparison with it is fair."""
    runs = [
        reference.greedy_select(pool, target + shift, start, rng=random.Random(seed), fixed=True, **options)
        for shift in (0.0, 1e-12, -1e-12)
    ]
    assert runs[0].indices == runs[1].indices == runs[2].indices, "ill-conditioned example"
    return runs[0]


def run(*argv: str) -> tuple[int, str]:
    """`gio-rs` in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, err.getvalue()


def summary_of(out: Path) -> dict:
    return json.loads(out.with_name(out.stem + ".summary.json").read_text())


def test_out_format_overrides_the_extension(data, tmp_path):
    np.save(tmp_path / "pool.npy", data["pool"])
    np.save(tmp_path / "target.npy", data["target"])
    np.save(tmp_path / "init.npy", data["init"])
    expected = oracle(data["pool"], data["target"], data["init"], 0, **OPTIONS)
    for fmt in ("npy", "csv", "tsv", "parquet"):
        out = tmp_path / f"sel-{fmt}.dat"
        code, err = run("select", "--train", str(tmp_path / "pool.npy"), "--out", str(out),
                        "--target", str(tmp_path / "target.npy"), "--init", str(tmp_path / "init.npy"),
                        "--out-format", fmt, "--quiet", *FLAGS)  # fmt: skip
        assert code == 0, err
        if fmt == "npy":
            rows = np.load(out)
        elif fmt == "parquet":
            rows = np.array(pq.read_table(out).column("features").to_pylist())
        else:
            options = pacsv.ParseOptions(delimiter="," if fmt == "csv" else "\t")
            table = pacsv.read_csv(out, parse_options=options)
            assert table.column("row_index").to_pylist() == expected.indices
            rows = np.array([json.loads(t) for t in table.column("features").to_pylist()])  # JSON lists
        np.testing.assert_array_equal(rows, data["pool"][expected.indices])
        assert summary_of(out)["output"]["format"] == fmt


def test_input_format_flags_override_the_extensions(data, tmp_path):
    """A .npy named .bin, a headed CSV named .dat and a reference TSV named .txt (which would be
    embedded as text by its extension) are read as the flags say."""
    np.save(tmp_path / "pool.npy", data["pool"])
    (tmp_path / "pool.npy").rename(tmp_path / "pool.bin")
    pacsv.write_csv(pa.table({f"x{j}": data["target"][:, j] for j in range(4)}), tmp_path / "target.dat")
    with open(tmp_path / "init.txt", "w") as fh:
        for i, row in enumerate(data["init"]):
            fh.write(f"{i}\tstart {i}\t{json.dumps(row.tolist())}\n")
    out = tmp_path / "sel.npy"
    code, err = run("select", "--train", str(tmp_path / "pool.bin"), "--train-format", "npy",
                    "--target", str(tmp_path / "target.dat"), "--target-format", "csv",
                    "--init", str(tmp_path / "init.txt"), "--init-format", "reference-tsv",
                    "--out", str(out), "--quiet", *FLAGS)  # fmt: skip
    assert code == 0, err
    expected = oracle(data["pool"], data["target"], data["init"], 0, **OPTIONS)
    summary = summary_of(out)
    assert summary["indices"] == expected.indices
    assert [summary["inputs"][s]["format"] for s in ("train", "target", "init")] == [
        "npy",
        "csv",
        "reference-tsv",
    ]
    np.testing.assert_allclose(summary["kl_trace"], expected.kl_trace, rtol=1e-9)


def test_feature_columns_choose_the_vector(data, tmp_path):
    noise = np.random.default_rng(9).normal(size=len(data["pool"]))
    pool = {"id": [f"p{i}" for i in range(len(data["pool"]))], "a": data["pool"][:, 0], "noise": noise}
    pool |= {c: data["pool"][:, j] for j, c in enumerate("bcd", start=1)}
    pacsv.write_csv(pa.table(pool), tmp_path / "pool.csv")
    pacsv.write_csv(
        pa.table({c: data["target"][:, j] for j, c in enumerate("abcd")}), tmp_path / "target.csv"
    )
    # The columns are chosen in every input file (a .npy has none to choose): the start too is a CSV.
    pacsv.write_csv(pa.table({c: data["init"][:, j] for j, c in enumerate("abcd")}), tmp_path / "init.csv")
    base = ["select", "--train", str(tmp_path / "pool.csv"), "--target", str(tmp_path / "target.csv"),
            "--init", str(tmp_path / "init.csv"), "--quiet", *FLAGS]  # fmt: skip
    out = tmp_path / "sel.parquet"
    code, err = run(*base, "--out", str(out), "--feature-columns", "a,b,c,d")
    assert code == 0, err
    expected = oracle(data["pool"], data["target"], data["init"], 0, **OPTIONS)
    written = pq.read_table(out)
    assert written.column("row_index").to_pylist() == expected.indices
    assert written.column("id").to_pylist() == [f"p{i}" for i in expected.indices]
    # Without the flag every numeric column is a component, noise included: 5 against 4.
    code, err = run(*base, "--out", str(tmp_path / "all.parquet"))
    assert code == 2 and "--target" in err and "4 components" in err and "has 5" in err, err


def test_progress_flag_shows_bars_when_stderr_is_not_a_terminal(data, tmp_path):
    np.save(tmp_path / "pool.npy", data["pool"])
    np.save(tmp_path / "target.npy", data["target"])
    base = [sys.executable, "-m", "gio_rs", "select", "--train", "pool.npy", "--target", "target.npy",
            "--clusters", "10", *FLAGS]  # fmt: skip
    shown = subprocess.run(
        [*base, "--out", "a.npy", "--progress"], cwd=tmp_path, capture_output=True, text=True
    )
    hidden = subprocess.run([*base, "--out", "b.npy"], cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == hidden.returncode == 0, shown.stderr + hidden.stderr
    assert "gio_rs select" in shown.stderr and "KMeans K=10" in shown.stderr
    assert "gio_rs select" not in hidden.stderr and "KMeans K=" not in hidden.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_version_flag_prints_the_crate_version():
    cargo = (REPO / "Cargo.toml").read_text()
    version = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', cargo, re.M | re.S).group(1)
    done = subprocess.run([sys.executable, "-m", "gio_rs", "--version"], capture_output=True, text=True)
    assert (
        done.returncode == 0 and done.stdout.strip() == f"gio_rs {version}" == f"gio_rs {gio_rs.__version__}"
    )


def test_method_greedy_and_its_table_cap(data, tmp_path):
    np.save(tmp_path / "pool.npy", data["pool"])
    np.save(tmp_path / "target.npy", data["target"])
    np.save(tmp_path / "init.npy", data["init"])
    base = ["select", "--train", str(tmp_path / "pool.npy"), "--target", str(tmp_path / "target.npy"),
            "--init", str(tmp_path / "init.npy"), "--method", "greedy", "--k", "3", "--stop", "increase",
            "--quiet"]  # fmt: skip
    table = len(data["pool"]) * len(data["target"]) * 8
    out = tmp_path / "g.npy"
    code, err = run(*base, "--out", str(out), "--greedy-max-bytes", str(table))
    assert code == 0, err
    expected = reference.exact_greedy_select(
        data["pool"], data["target"], data["init"], k=3, stop_criterion="increase"
    )
    summary = summary_of(out)
    assert summary["indices"] == expected.indices and summary["stop_reason"] == expected.stop_reason
    np.testing.assert_allclose(summary["kl_trace"], expected.kl_trace, rtol=1e-9)
    code, err = run(*base, "--out", str(tmp_path / "h.npy"), "--greedy-max-bytes", str(table - 1))
    assert code == 2 and err.strip().splitlines()[-1].startswith("gio-rs: error: train: "), err
    assert not (tmp_path / "h.npy").exists()


def test_uniform_start_flags_scale_factor_and_resets(data, tmp_path):
    """--no-normalize, --scale-factor and --resets-allowed reach the run: the oracle with the
    same unnormalised uniform start, scale and resets picks the same rows, resets included."""
    np.save(tmp_path / "pool.npy", data["pool"])
    np.save(tmp_path / "target.npy", data["target"])
    out = tmp_path / "sel.npy"
    code, err = run("select", "--train", str(tmp_path / "pool.npy"), "--target", str(tmp_path / "target.npy"),
                    "--out", str(out), "--no-normalize", "--scale-factor", "2.5", "--resets-allowed",
                    "--max-resets", "2", "--stop", "increase", "--k", "3", "--max-iter", "30", "--seed", "6",
                    "--quiet")  # fmt: skip
    assert code == 0, err
    start = np.random.RandomState(6).uniform(-1.0, 1.0, size=(20, 4))  # not normalised
    expected = oracle(data["pool"], data["target"], start, 6, k=3, max_iter=30, stop_criterion="increase",
                      resets_allowed=True, max_resets=2, scale_factor=2.5)  # fmt: skip
    summary = summary_of(out)
    assert expected.num_resets > 0  # the example exercises the resets
    assert summary["indices"] == expected.indices
    assert (
        summary["counts"]["resets"] == expected.num_resets and summary["stop_reason"] == expected.stop_reason
    )
    assert summary["parameters"]["normalize"] is False and summary["parameters"]["scale_factor"] == 2.5


def test_embed_model_batch_size_and_overwrite(tmp_path):
    from gio_rs.embed import embed, packaged_model_dir

    lines = ["A cat sat on the mat.", "Ein Hund läuft im Park.", "", "word " * 300]
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = embed(lines)
    outputs = []
    for batch in ("1", "3"):
        out = tmp_path / f"e{batch}.npy"
        code, err = run("embed", "--in", str(tmp_path / "s.txt"), "--out", str(out), "--model",
                        str(packaged_model_dir()), "--batch-size", batch, "--quiet")  # fmt: skip
        assert code == 0, err
        outputs.append(np.load(out))
    for got in outputs:
        np.testing.assert_allclose(got, expected, atol=2e-6)
    code, err = run("embed", "--in", str(tmp_path / "s.txt"), "--out", str(tmp_path / "x.npy"),
                    "--model", str(tmp_path / "no-model"), "--quiet")  # fmt: skip
    assert code == 2 and "model: " in err and not (tmp_path / "x.npy").exists(), err
    # An existing output is refused, then replaced with --overwrite.
    (tmp_path / "t.txt").write_text("only one line\n", encoding="utf-8")
    code, err = run("embed", "--in", str(tmp_path / "t.txt"), "--out", str(tmp_path / "e1.npy"), "--quiet")
    assert code == 2 and "already exists" in err, err
    np.testing.assert_array_equal(np.load(tmp_path / "e1.npy"), outputs[0])
    code, err = run(
        "embed", "--in", str(tmp_path / "t.txt"), "--out", str(tmp_path / "e1.npy"), "--overwrite", "--quiet"
    )
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "e1.npy"), embed(["only one line"]))


def test_demo_seed_and_overwrite(tmp_path):
    """--seed picks another held-out target of 60 images of 0s and 1s (the pool is the rest);
    --overwrite reruns into the same folder with the same result."""
    from sklearn.datasets import load_digits

    from gio_rs.cli.demo import prepare_digits

    folder = tmp_path / "demo"
    code, err = run("demo", "--out", str(folder), "--seed", "3", "--quiet")
    assert code == 0, err
    target = pq.read_table(folder / "target.parquet").to_pydict()
    pool_ids = pq.read_table(folder / "pool.parquet").column("image_id").to_pylist()
    labels = load_digits().target
    assert len(target["image_id"]) == 60 and set(labels[target["image_id"]]) <= {0, 1}
    assert sorted(pool_ids + target["image_id"]) == list(range(len(labels)))
    _, default_target = prepare_digits(tmp_path / "seed0", seed=0, overwrite=False)
    assert target["image_id"] != pq.read_table(default_target).column("image_id").to_pylist()
    summary = json.loads((folder / "selected.summary.json").read_text())
    assert summary["parameters"]["seed"] == 3
    first = pq.read_table(folder / "selected.parquet").column("row_index").to_pylist()
    code, err = run("demo", "--out", str(folder), "--seed", "3", "--quiet")
    assert code == 2 and "already exists" in err, err
    code, err = run("demo", "--out", str(folder), "--seed", "3", "--overwrite", "--quiet")
    assert code == 0, err
    assert pq.read_table(folder / "selected.parquet").column("row_index").to_pylist() == first
