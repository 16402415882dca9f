"""Every reader of `gio_rs.io` (and so of the `gio-rs` command) fed a zero-byte file and a file
cut in half: a GioError naming the file from the library, one line and exit status 2 from the
command, never a traceback. A text file cut at a place that still parses reads, with a warning
that its last line has no line break."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import gio_rs
from gio_rs import cli
from gio_rs import io as gio_io

ROWS, DIM = 30, 5
CUT_WARNING = "the last line does not end with a line break"


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(ROWS, DIM))


def ids(n: int = ROWS) -> list[str]:
    return [f"doc-{i}" for i in range(n)]


def write_npy(path: Path, x: np.ndarray) -> None:
    np.save(path, x)


def write_parquet(path: Path, x: np.ndarray) -> None:
    pq.write_table(pa.table({"id": ids(len(x)), "features": x.tolist()}), path)


def write_reference_tsv(path: Path, x: np.ndarray) -> None:
    with open(path, "w") as fh:
        for i, row in enumerate(x):
            fh.write(f"{i}\tdoc-{i}\t{json.dumps(row.tolist())}\n")


def write_json_csv(path: Path, x: np.ndarray) -> None:
    pacsv.write_csv(pa.table({"id": ids(), "features": [json.dumps(r.tolist()) for r in x]}), path)


def write_numeric_tsv(path: Path, x: np.ndarray) -> None:
    table = pa.table({"id": ids(), **{f"x{j}": x[:, j] for j in range(DIM)}})
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(delimiter="\t"))


# (file name, format read_table detects, writer)
TABLE_READERS = [
    ("pool.npy", "npy", write_npy),
    ("pool.parquet", "parquet", write_parquet),
    ("pool.tsv", "reference-tsv", write_reference_tsv),
    ("pool.csv", "csv", write_json_csv),
    ("numbers.tsv", "tsv", write_numeric_tsv),
]
SENTENCES = [f"Crème brûlée n°{i} à la façon de Pâquerette, déjà servie." for i in range(12)]


def cut_in_half(path: Path) -> int:
    """Keep the first half of the file's bytes; returns where it was cut."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return len(data) // 2


def line_before_cut(path: Path) -> bytes:
    """The last (cut) line of a file cut by `cut_in_half`."""
    return path.read_bytes().rsplit(b"\n", 1)[-1]


def cli_select_error(capsys, train: Path, target: Path, *extra: str) -> str:
    """Run `gio-rs select` in-process (warnings shown, as for a user) and return its one error line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code = cli.main(["select", "--train", str(train), "--target", str(target),
                         "--out", str(train.parent / "out.parquet"), *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("gio-rs: error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert not (train.parent / "out.parquet").exists()
    return errors[0]


@pytest.fixture
def target(tmp_path, vectors) -> Path:
    path = tmp_path / "target.npy"
    np.save(path, vectors[:10] + 0.5)
    return path


@pytest.mark.parametrize("name, fmt, write", TABLE_READERS, ids=[r[1] for r in TABLE_READERS])
def test_zero_byte_file(name, fmt, write, capsys, tmp_path, target):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(gio_rs.GioError) as err:
        gio_io.read_table(path)
    assert str(err.value) == f"{path}: is empty (0 bytes)"
    with pytest.raises(gio_rs.GioError, match="is empty"):
        gio_io.read_table(path, fmt=fmt)  # the format given, not guessed
    assert cli_select_error(capsys, path, target) == f"gio-rs: error: {path}: is empty (0 bytes)"


def test_the_issue_zero_byte_npy_as_a_command(tmp_path, target):
    """The report: `gio-rs select --train empty.npy` printed an EOFError traceback, exit 1."""
    (tmp_path / "empty.npy").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-m", "gio_rs", "select", "--train", "empty.npy", "--target", str(target),
         "--out", "o.parquet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="error"),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "gio-rs: error: empty.npy: is empty (0 bytes)\n"


def test_npy_cut_in_half(capsys, tmp_path, vectors, target):
    path = tmp_path / "pool.npy"
    np.save(path, vectors)
    cut_in_half(path)
    with pytest.raises(gio_rs.GioError, match=r"pool\.npy: not a valid numeric \.npy file"):
        gio_io.read_table(path)
    assert "pool.npy: not a valid numeric .npy file" in cli_select_error(capsys, path, target)
    # Cut inside the header: numpy raises EOFError/ValueError there, also named.
    np.save(path, vectors)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(gio_rs.GioError, match=r"pool\.npy: not a valid numeric \.npy file"):
        gio_io.read_table(path)


def test_parquet_cut_in_half_and_in_a_folder(capsys, tmp_path, vectors, target):
    path = tmp_path / "pool.parquet"
    write_parquet(path, vectors)
    cut_in_half(path)
    with pytest.raises(gio_rs.GioError, match=r"pool\.parquet: could not be read as parquet \(ArrowInvalid"):
        gio_io.read_table(path)
    assert "pool.parquet: could not be read as parquet" in cli_select_error(capsys, path, target)
    folder = tmp_path / "pool"
    folder.mkdir()
    write_parquet(folder / "part-0.parquet", vectors[:15])
    write_parquet(folder / "part-1.parquet", vectors[15:])
    assert len(gio_io.read_table(folder)) == ROWS
    cut_in_half(folder / "part-1.parquet")
    with pytest.raises(gio_rs.GioError, match=r"pool: could not be read as parquet .*part-1\.parquet"):
        gio_io.read_table(folder)
    (folder / "part-1.parquet").write_bytes(b"")  # an empty shard is named before anything is read
    with pytest.raises(gio_rs.GioError, match=r"pool.part-1\.parquet: is empty \(0 bytes\)"):
        gio_io.read_table(folder)
    assert "part-1.parquet: is empty (0 bytes)" in cli_select_error(capsys, folder, target)


def test_reference_tsv_cut_in_half(capsys, tmp_path, vectors, target):
    path = tmp_path / "pool.tsv"
    write_reference_tsv(path, vectors)
    cut_in_half(path)
    assert line_before_cut(path).count(b"\t") == 1  # cut inside _c1: the last row has 2 fields of 3
    with (
        pytest.warns(UserWarning, match=CUT_WARNING),
        pytest.raises(
            gio_rs.GioError,
            match=r"pool\.tsv: could not be read as reference-tsv \(ArrowInvalid.*Expected 3 columns",
        ),
    ):
        gio_io.read_table(path)
    assert "pool.tsv: could not be read as reference-tsv" in cli_select_error(capsys, path, target)
    # Cut inside the JSON vector: named by row.
    write_reference_tsv(path, vectors)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\n", len(data) // 2) - 3])
    with (
        pytest.warns(UserWarning, match=CUT_WARNING),
        pytest.raises(gio_rs.GioError, match=r"pool\.tsv: column '_c2' at row 15 is not a JSON list"),
    ):
        gio_io.read_table(path)


def test_csv_cut_in_half(capsys, tmp_path, vectors, target):
    path = tmp_path / "pool.csv"
    write_json_csv(path, vectors)
    cut_in_half(path)
    assert line_before_cut(path).count(b'"') == 3  # cut inside the quoted JSON vector
    with (
        pytest.warns(UserWarning, match=CUT_WARNING),
        pytest.raises(gio_rs.GioError, match=r"pool\.csv: column 'features' at row 14 is not a JSON list"),
    ):
        gio_io.read_table(path)
    assert "pool.csv: column 'features' at row 14" in cli_select_error(capsys, path, target)


def test_numeric_tsv_cut_in_half_reads_with_a_warning(capsys, tmp_path, vectors, target):
    """Cut inside the last number of a row, a numeric TSV still parses: the last row has lost
    digits. Nothing can tell that from a file written that way, so it reads, with a warning."""
    path = tmp_path / "numbers.tsv"
    write_numeric_tsv(path, vectors)
    cut_in_half(path)
    last = line_before_cut(path)
    assert last.count(b"\t") == DIM  # every column present, the last one cut short
    with pytest.warns(UserWarning, match=rf"numbers\.tsv: {CUT_WARNING}"):
        table = gio_io.read_table(path)
    whole_rows = len(table) - 1
    np.testing.assert_allclose(table.features[:whole_rows], vectors[:whole_rows], rtol=1e-12)
    assert table.features[-1, -1] != vectors[whole_rows, -1]
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code = cli.main(["select", "--train", str(path), "--target", str(target), "--k", "2", "--quiet",
                         "--out", str(tmp_path / "out.parquet")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert (
        err
        == f"gio-rs: warning: {path}: {CUT_WARNING}; if the file was cut short, its last row is incomplete\n"
    )
    # Under `python -W error` the warning is an error, still one line.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = cli.main(["select", "--train", str(path), "--target", str(target), "--quiet",
                         "--out", str(tmp_path / "out2.parquet")])  # fmt: skip
    assert code == cli.EXIT_ERROR
    assert capsys.readouterr().err.startswith(f"gio-rs: error: {path}: {CUT_WARNING}")


def write_sentences(path: Path) -> None:
    path.write_text("".join(s + "\n" for s in SENTENCES), encoding="utf-8")


def test_text_zero_byte_and_cut_in_half(capsys, tmp_path, target):
    """.txt (embedded on the way in) and `gio-rs embed --in`: as a pool or target, an empty file is
    refused before the model loads; `gio-rs embed` writes no rows for it (one row per line). A cut
    inside a UTF-8 character is named with its line by both."""
    path = tmp_path / "pool.txt"
    path.write_bytes(b"")
    with pytest.raises(gio_rs.GioError, match=r"pool\.txt: is empty \(0 bytes\)"):
        gio_io.read_table(path)
    assert cli_select_error(capsys, path, target) == f"gio-rs: error: {path}: is empty (0 bytes)"
    assert cli.main(["embed", "--in", str(path), "--out", str(tmp_path / "empty.npy"), "--quiet"]) == 0
    assert np.load(tmp_path / "empty.npy").shape == (0, 384)

    write_sentences(path)
    data = path.read_bytes()
    # Near the middle, inside a two-byte character: what a cut copy of UTF-8 text often ends with.
    cut = next(i for i in range(len(data) // 2, len(data)) if data[i] >= 0xC0) + 1
    path.write_bytes(data[:cut])
    line = data[:cut].count(b"\n") + 1
    with (
        pytest.warns(UserWarning, match=CUT_WARNING),
        pytest.raises(gio_rs.GioError, match=rf"pool\.txt is not UTF-8 text: line {line} "),
    ):
        gio_io.read_table(path)
    assert "pool.txt" in cli_select_error(capsys, path, target)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["embed", "--in", str(path), "--out", str(tmp_path / "e.npy")]) == cli.EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("gio-rs: error: ") and "pool.txt" in err[-1] and f"line {line} " in err[-1]
    assert not (tmp_path / "e.npy").exists()


def test_text_cut_at_a_character_boundary_reads_with_a_warning(tmp_path):
    path = tmp_path / "pool.txt"
    write_sentences(path)
    data = path.read_bytes()
    cut = data.index(b" ", len(data) // 2)  # between two words of sentence 6
    path.write_bytes(data[:cut])
    with pytest.warns(UserWarning, match=CUT_WARNING):
        table = gio_io.read_table(path)
    assert table.columns.column("sentence").to_pylist() == SENTENCES[:6] + [
        SENTENCES[6][: SENTENCES[6].index(" ")]
    ]


def test_text_column_of_a_cut_csv(capsys, tmp_path, target):
    path = tmp_path / "pool.csv"
    path.write_bytes(b"")
    with pytest.raises(gio_rs.GioError, match=r"pool\.csv: is empty"):
        gio_io.read_table(path, text_column="text")
    pacsv.write_csv(pa.table({"text": SENTENCES, "id": list(range(len(SENTENCES)))}), path)
    cut_in_half(path)
    assert line_before_cut(path).count(b'"') == 1  # inside the quoted text
    with (
        pytest.warns(UserWarning, match=CUT_WARNING),
        pytest.raises(gio_rs.GioError, match=r"pool\.csv: could not be read as csv"),
    ):
        gio_io.read_table(path, text_column="text")
    assert "pool.csv: could not be read as csv" in cli_select_error(
        capsys, path, target, "--text-column", "text"
    )


def test_any_reader_exception_names_the_file(tmp_path, monkeypatch):
    """An exception type no reader is known to raise still becomes a GioError naming the file,
    its type and message kept (and chained); ImportError passes through unchanged."""
    path = tmp_path / "pool.parquet"
    write_parquet(path, np.ones((3, 2)))

    def broken(*args, **kwargs):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr(pq, "read_table", broken)
    with pytest.raises(gio_rs.GioError) as err:
        gio_io.read_table(path)
    assert str(err.value) == f"{path}: could not be read as parquet (RuntimeError: first line)"
    assert isinstance(err.value.__cause__, RuntimeError)

    def missing(*args, **kwargs):
        raise ImportError("reading parquet needs pyarrow")

    monkeypatch.setattr(pq, "read_table", missing)
    with pytest.raises(ImportError, match="needs pyarrow"):
        gio_io.read_table(path)


def test_engine_spark_zero_byte_and_cut_parquet(capsys, monkeypatch, tmp_path, vectors):
    """`--engine spark` reads with Spark: a zero-byte input is refused before Spark starts, a cut
    one is named in one line (Spark's own log lines aside), not a Py4J traceback."""
    write_parquet(tmp_path / "target.parquet", vectors[:10])
    (tmp_path / "empty.parquet").write_bytes(b"")
    args = ["select", "--engine", "spark", "--master", "local[1]", "--clusters", "4",
            "--target", "target.parquet", "--out", "sel", "--quiet"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert cli.main([*args, "--train", "empty.parquet"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err == "gio-rs: error: empty.parquet: is empty (0 bytes)\n"

    write_parquet(tmp_path / "pool.parquet", vectors)
    cut_in_half(tmp_path / "pool.parquet")
    done = subprocess.run([sys.executable, "-m", "gio_rs", *args, "--train", "pool.parquet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=dict(os.environ))  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("gio-rs: error: pool.parquet: could not be read as parquet (Py4JJavaError: "), last
    assert "pool.parquet" in last.split("Py4JJavaError", 1)[1]  # Spark's message names the file too
    assert not (tmp_path / "sel").exists()
