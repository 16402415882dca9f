"""The `gio-rs` command: run as a subprocess on small files in each format, the written rows
checked against the Python API's indices; error cases checked for their message and exit code."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import gio_rs
from gio_rs import cli, ranking
from gio_rs import io as gio_io
from gio_rs.cli.parser import NOT_FLAGS

SELECT_OPTIONS = {"k": 3, "stop_criterion": "data_size", "max_data_size": 0.1, "v_init": "jump", "seed": 7}
CLI_OPTIONS = ["--k", "3", "--stop", "data_size", "--max-data-size", "0.1", "--v-init", "jump", "--seed", "7"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="error")
    return subprocess.run(
        [sys.executable, "-m", "gio_rs", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(3)
    pool = rng.normal(size=(120, 6)).astype(np.float64)
    target = rng.normal(loc=0.7, size=(25, 6))
    return {"pool": pool, "target": target, "ids": [f"doc-{i}" for i in range(len(pool))]}


def expected_selection(data: dict, **extra) -> gio_rs.Selection:
    return gio_rs.select(data["pool"], data["target"], **SELECT_OPTIONS, **extra)


def json_lists(rows: np.ndarray) -> list[str]:
    return [json.dumps(r.tolist()) for r in rows]


def write_inputs(fmt: str, data: dict, folder: Path) -> tuple[Path, Path]:
    """Pool and target files in `fmt`; the pool carries an `id` text column where it can."""
    pool, target, ids = data["pool"], data["target"], data["ids"]
    if fmt == "npy":
        paths = folder / "pool.npy", folder / "target.npy"
        np.save(paths[0], pool)
        np.save(paths[1], target)
    elif fmt == "parquet":
        paths = folder / "pool.parquet", folder / "target.parquet"
        pq.write_table(pa.table({"id": ids, "features": pool.tolist()}), paths[0])
        pq.write_table(pa.table({"features": target.tolist()}), paths[1])
    elif fmt == "reference-tsv":  # headerless: _c0, _c1, _c2 = JSON vector
        paths = folder / "pool.tsv", folder / "target.tsv"
        for path, rows, names in ((paths[0], pool, ids), (paths[1], target, None)):
            with open(path, "w") as fh:
                for i, text in enumerate(json_lists(rows)):
                    fh.write(f"{i}\t{names[i] if names else 'x'}\t{text}\n")
    elif fmt == "csv-json":
        paths = folder / "pool.csv", folder / "target.csv"
        pacsv.write_csv(pa.table({"id": ids, "features": json_lists(pool)}), paths[0])
        pacsv.write_csv(pa.table({"features": json_lists(target)}), paths[1])
    elif fmt == "tsv-columns":  # one numeric column per component, plus a text column
        paths = folder / "pool.tsv", folder / "target.tsv"
        options = pacsv.WriteOptions(delimiter="\t")
        pool_cols = {"id": ids, **{f"x{j}": pool[:, j] for j in range(pool.shape[1])}}
        target_cols = {f"x{j}": target[:, j] for j in range(target.shape[1])}
        pacsv.write_csv(pa.table(pool_cols), paths[0], write_options=options)
        pacsv.write_csv(pa.table(target_cols), paths[1], write_options=options)
    else:
        raise AssertionError(fmt)
    return paths


@pytest.mark.parametrize("fmt", ["npy", "parquet", "reference-tsv", "csv-json", "tsv-columns"])
def test_each_input_format_selects_the_api_rows(fmt, data, tmp_path):
    pool_file, target_file = write_inputs(fmt, data, tmp_path)
    out = tmp_path / "selected.parquet"
    done = run_cli(
        "select", "--train", str(pool_file), "--target", str(target_file), "--out", str(out), *CLI_OPTIONS,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = expected_selection(data)
    written = pq.read_table(out)
    np.testing.assert_array_equal(written.column("row_index").to_numpy(), expected.indices)
    assert "cluster" not in written.column_names
    if fmt in ("parquet", "csv-json", "reference-tsv"):
        ids = written.column("_c1" if fmt == "reference-tsv" else "id").to_pylist()
        assert ids == [data["ids"][i] for i in expected.indices]
    if fmt == "tsv-columns":
        assert written.column("id").to_pylist() == [data["ids"][i] for i in expected.indices]
        got = np.column_stack([written.column(f"x{j}").to_numpy() for j in range(6)])
    elif fmt in ("reference-tsv", "csv-json"):  # the vector column keeps its JSON text
        column = "_c2" if fmt == "reference-tsv" else "features"
        got = np.array([json.loads(t) for t in written.column(column).to_pylist()])
    else:
        got = np.array(written.column("features").to_pylist())
    np.testing.assert_allclose(got, data["pool"][expected.indices], rtol=1e-15)

    summary = json.loads((tmp_path / "selected.summary.json").read_text())
    assert summary["indices"] == expected.indices.tolist()
    np.testing.assert_allclose(summary["kl_trace"], expected.kl_trace, rtol=1e-12)
    assert summary["stop_reason"] == expected.stop_reason
    assert summary["counts"]["selected_rows"] == len(expected)
    assert summary["counts"]["pool_rows"] == len(data["pool"])
    assert summary["parameters"]["k"] == 3 and summary["parameters"]["seed"] == 7
    assert set(summary["timings_seconds"]) >= {"read", "select", "write", "total"}


@pytest.mark.parametrize("out_name", ["sel.csv", "sel.tsv", "sel.npy", "sel.parquet"])
def test_each_output_format(out_name, data, tmp_path):
    pool_file, target_file = write_inputs("parquet", data, tmp_path)
    out = tmp_path / out_name
    done = run_cli(
        "select", "--train", str(pool_file), "--target", str(target_file), "--out", str(out),
        "--clusters", "30", "--kmeans-max-iter", "20", *CLI_OPTIONS, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = expected_selection(data, n_clusters=30, kmeans_max_iter=20)
    assert expected.cluster_of_row is not None
    # With --clusters the rows come ranked: clusters in selection order, then nearest the target.
    distances = ranking.target_distances(data["pool"], expected.indices, expected.quantization.target_centers)
    clusters = ranking.first_occurrences(expected.clusters)
    order = ranking.rank_order(expected.cluster_of_row, clusters, distances, expected.indices)
    expected = dataclasses.replace(
        expected, indices=expected.indices[order], cluster_of_row=expected.cluster_of_row[order]
    )
    rows = data["pool"][expected.indices]
    if out_name.endswith(".npy"):
        np.testing.assert_array_equal(np.load(out), rows)
        return
    if out_name.endswith(".parquet"):
        written = pq.read_table(out)
        got = np.array(written.column("features").to_pylist())
    else:
        delimiter = "," if out_name.endswith(".csv") else "\t"
        written = pacsv.read_csv(out, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        got = np.array([json.loads(t) for t in written.column("features").to_pylist()])
    np.testing.assert_array_equal(written.column("row_index").to_numpy(), expected.indices)
    np.testing.assert_array_equal(written.column("cluster").to_numpy(), expected.cluster_of_row)
    assert written.column("id").to_pylist() == [data["ids"][i] for i in expected.indices]
    np.testing.assert_allclose(got, rows, rtol=1e-15)


def test_init_file_plot_and_console_script(data, tmp_path):
    pool_file, target_file = write_inputs("npy", data, tmp_path)
    init = data["pool"][:5] + 0.01
    np.save(tmp_path / "init.npy", init)
    script = Path(sys.executable).with_name("gio-rs")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gio_rs"]
    done = subprocess.run(
        [*command, "select", "--train", str(pool_file), "--target", str(target_file),
         "--init", str(tmp_path / "init.npy"), "--out", str(tmp_path / "o.npy"),
         "--plot", str(tmp_path / "o.png"), "--summary", str(tmp_path / "s.json"), *CLI_OPTIONS],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = expected_selection(data, init=init)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), data["pool"][expected.indices])
    assert (tmp_path / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["counts"]["init_rows"] == 5 and summary["plot"] == str(tmp_path / "o.png")
    assert not (tmp_path / "o.summary.json").exists()


def test_every_select_option_is_a_flag():
    parser = cli.build_parser()
    select_parser = parser._subparsers._group_actions[0].choices["select"]
    dests = {a.dest for a in select_parser._actions}
    import inspect

    options = set(inspect.signature(gio_rs.select).parameters) - NOT_FLAGS
    assert options <= dests, options - dests
    args = parser.parse_args(
        ["select", "--train", "a", "--target", "b", "--out", "c", "--no-normalize", "--scale-factor", "2.5",
         "--resets-allowed", "--clusters", "8", "--stop", "min_kl"]
    )  # fmt: skip
    assert args.normalize is False and args.scale_factor == 2.5 and args.resets_allowed is True
    assert args.n_clusters == 8 and args.stop_criterion == "min_kl" and args.seed == 0


def test_demo_writes_output_summary_and_plot(tmp_path):
    done = run_cli("demo", "--out", str(tmp_path / "demo"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "demo"
    summary = json.loads((folder / "selected.summary.json").read_text())
    selected = pq.read_table(folder / "selected.parquet")
    assert summary["counts"]["selected_rows"] == len(selected) > 5
    assert (folder / "selection.png").stat().st_size > 10_000
    # The target shows only 0s and 1s; GIO never sees a label but should pick mostly those.
    digits = selected.column("digit").to_numpy()
    assert np.isin(digits, [0, 1]).mean() >= 0.8
    assert "show a target digit" in done.stderr
    again = run_cli("demo", "--out", str(folder), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


# --- errors: one line naming the file or flag, exit status 2, nothing written -------------------


def cli_error(capsys, *args: str) -> str:
    code = cli.main(list(args))
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR, err
    assert err.splitlines()[-1].startswith("gio-rs: error: "), err
    return err.splitlines()[-1]


def test_missing_file(capsys, data, tmp_path):
    _, target_file = write_inputs("npy", data, tmp_path)
    err = cli_error(capsys, "select", "--train", str(tmp_path / "nope.npy"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "nope.npy: no such file" in err
    assert not (tmp_path / "o.npy").exists()


def test_unreadable_column(capsys, data, tmp_path):
    pool_file, target_file = write_inputs("parquet", data, tmp_path)
    err = cli_error(capsys, "select", "--train", str(pool_file), "--target", str(target_file),
                    "--features-col", "embedding", "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "no column 'embedding'" in err and "pool.parquet" in err
    pq.write_table(pa.table({"features": ["a", "b"]}), tmp_path / "text.parquet")
    err = cli_error(capsys, "select", "--train", str(tmp_path / "text.parquet"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "text.parquet" in err and "'features'" in err and "JSON list" in err


def test_mixed_dimensions(capsys, data, tmp_path):
    pool_file, _ = write_inputs("npy", data, tmp_path)
    np.save(tmp_path / "t5.npy", data["target"][:, :5])
    err = cli_error(capsys, "select", "--train", str(pool_file), "--target", str(tmp_path / "t5.npy"),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "--target" in err and "5 components" in err and "6" in err


def test_ragged_and_null_vectors(capsys, data, tmp_path):
    _, target_file = write_inputs("npy", data, tmp_path)
    pq.write_table(pa.table({"features": [[1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0]]}), tmp_path / "r.parquet")
    err = cli_error(capsys, "select", "--train", str(tmp_path / "r.parquet"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "r.parquet" in err and "mixes vector lengths" in err and "rows 1" in err
    pq.write_table(pa.table({"features": [[1.0, 2.0], None, [1.0, None]]}), tmp_path / "n.parquet")
    err = cli_error(capsys, "select", "--train", str(tmp_path / "n.parquet"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "n.parquet" in err and "null vectors (rows 1)" in err


def test_nan_rows_are_named(capsys, data, tmp_path):
    _, target_file = write_inputs("npy", data, tmp_path)
    pool = data["pool"].copy()
    pool[[4, 17], 2] = np.nan
    pool[30, 0] = np.inf
    np.save(tmp_path / "bad.npy", pool)
    err = cli_error(capsys, "select", "--train", str(tmp_path / "bad.npy"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "bad.npy" in err and "NaN or infinite" in err and "4, 17, 30" in err
    with open(tmp_path / "bad.tsv", "w") as fh:
        fh.write("0\ta\t[1.0, 2.0]\n1\tb\t[NaN, 2.0]\n")
    err = cli_error(capsys, "select", "--train", str(tmp_path / "bad.tsv"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "bad.tsv" in err and "rows with NaN or infinite values: 1" in err


def test_existing_output_is_refused_unless_overwrite(capsys, data, tmp_path):
    pool_file, target_file = write_inputs("npy", data, tmp_path)
    out = tmp_path / "o.npy"
    out.write_bytes(b"precious")
    base = [
        "select",
        "--train",
        str(pool_file),
        "--target",
        str(target_file),
        "--out",
        str(out),
        *CLI_OPTIONS,
    ]
    err = cli_error(capsys, *base)
    assert "o.npy: already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    assert cli.main([*base, "--overwrite", "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out), data["pool"][expected_selection(data).indices])
    (tmp_path / "o.summary.json").unlink()
    err = cli_error(capsys, *base[: -len(CLI_OPTIONS)], "--plot", str(tmp_path / "o.npy"), "--overwrite")
    assert "must be different files" in err


def test_bad_option_value_names_the_option(capsys, data, tmp_path):
    pool_file, target_file = write_inputs("npy", data, tmp_path)
    err = cli_error(capsys, "select", "--train", str(pool_file), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"), "--k", "40")  # fmt: skip
    assert err.startswith("gio-rs: error: k:")
    assert not (tmp_path / "o.npy").exists() and not (tmp_path / "o.summary.json").exists()
    with pytest.raises(SystemExit) as exc:
        cli.main(["select", "--train", "a", "--target", "b", "--out", "c", "--max-iter", "many"])
    assert exc.value.code == 2
    assert "--max-iter" in capsys.readouterr().err


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"

    def fail(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gio_io.atomic_write(target, fail, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension_and_object_npy(capsys, data, tmp_path):
    _, target_file = write_inputs("npy", data, tmp_path)
    (tmp_path / "pool.xlsx").write_text("x")
    err = cli_error(capsys, "select", "--train", str(tmp_path / "pool.xlsx"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "pool.xlsx" in err and "format" in err
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    err = cli_error(capsys, "select", "--train", str(tmp_path / "obj.npy"), "--target", str(target_file),
                    "--out", str(tmp_path / "o.npy"))  # fmt: skip
    assert "obj.npy" in err and "numeric" in err


def test_embed_command_matches_the_library(tmp_path):
    from gio_rs import embed

    lines = ["A cat sat on the mat.", "", "Ein Hund läuft im Park."]
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for out in ("e.npy", "e.parquet"):
        done = run_cli("embed", "--in", str(tmp_path / "s.txt"), "--out", str(tmp_path / out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    expected = embed.embed(lines)
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), expected)
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column("sentence").to_pylist() == lines
    np.testing.assert_array_equal(np.array(table.column("features").to_pylist(), dtype=np.float32), expected)
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\xfe broken\n")
    done = run_cli("embed", "--in", str(tmp_path / "bad.txt"), "--out", str(tmp_path / "b.npy"), cwd=tmp_path)
    assert done.returncode == 2 and "bad.txt" in done.stderr and not (tmp_path / "b.npy").exists()


def test_select_on_text_files_and_a_text_column(tmp_path):
    from gio_rs import embed

    cooking = ["Whisk the eggs with sugar.", "Bake the bread for forty minutes.", "Simmer the sauce slowly.",
               "Chop the onions finely.", "Season the soup with salt."]  # fmt: skip
    other = ["The stock market fell today.", "Interest rates rose again.", "The striker scored twice.",
             "The match ended in a draw.", "Bonds rallied after the report."]  # fmt: skip
    pool = cooking + other
    target = ["Fry the garlic in olive oil.", "Knead the dough until smooth.", "Roast the vegetables."]
    (tmp_path / "pool.txt").write_text("\n".join(pool) + "\n", encoding="utf-8")
    (tmp_path / "target.txt").write_text("\n".join(target) + "\n", encoding="utf-8")
    options = ["--k", "2", "--stop", "data_size", "--max-data-size", "0.3", "--v-init", "jump", "--seed", "1"]
    done = run_cli("select", "--train", "pool.txt", "--target", "target.txt", "--out", "sel.txt", *options,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = gio_rs.select(embed.embed(pool), embed.embed(target), k=2, stop_criterion="data_size",
                             max_data_size=0.3, v_init="jump", seed=1)  # fmt: skip
    written = (tmp_path / "sel.txt").read_text(encoding="utf-8").splitlines()
    assert written == [pool[i] for i in expected.indices]
    pacsv.write_csv(pa.table({"id": list(range(len(pool))), "text": pool}), tmp_path / "pool.csv")
    done = run_cli("select", "--train", "pool.csv", "--target", "target.txt", "--text-column", "nope",
                   "--out", "bad.parquet", *options, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "pool.csv: no column 'nope'" in done.stderr
    pacsv.write_csv(pa.table({"text": target}), tmp_path / "target.csv")
    done = run_cli("select", "--train", "pool.csv", "--target", "target.csv", "--text-column", "text",
                   "--out", "col.parquet", *options, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "col.parquet")
    assert table.column("text").to_pylist() == [pool[i] for i in expected.indices]
    assert table.column("row_index").to_pylist() == expected.indices.tolist()
