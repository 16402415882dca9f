"""`gio_rs.generate_text_embeddings.GenerateEmbeddings`, the drop-in for grad-info-opt's
`GIO.generate_text_embeddings`: its signature, prints and file formats, the vectors of
`gio_rs.embed` (checked against real sentence-transformers output), model names and errors.

Needs the `text` extra and the packaged model, like tests/test_embed.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import fixtures_dir

from gio_rs import GioError
from gio_rs import generate_text_embeddings as module
from gio_rs.embed import embed, packaged_model_dir
from gio_rs.generate_text_embeddings import GenerateEmbeddings


@pytest.fixture(scope="module")
def reference_sentences():
    data = np.load(fixtures_dir() / "minilm_reference.npz")
    sentences = [str(s) for s in data["sentences"]]
    assert not any("\n" in s or "\r" in s for s in sentences)
    return sentences, data["embeddings"]


def test_generate_embeddings_writes_the_references_format(tmp_path, reference_sentences, capsys):
    sentences, expected = reference_sentences
    source = tmp_path / "in.txt"
    source.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    target = tmp_path / "out.txt"
    target.write_text("old content\n")  # replaced, as the reference's open(..., 'w') does
    GenerateEmbeddings("all-MiniLM-L6-v2").generate_embeddings(str(source), str(target))

    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == ["Reading File...", "Generating Embeddings... This May Take a While"]
    assert printed[2].startswith("Time Taken (s): ") and float(printed[2].split(": ")[1]) >= 0
    assert printed[3:] == ["Writing Embeddings.. This May Take a While"]

    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sentences)
    ours = embed(sentences)
    for line, vector in zip(lines, ours):
        assert line == str(vector.tolist())  # grad-info-opt: str(each.tolist()).strip()
    parsed = np.array([json.loads(line) for line in lines], dtype=np.float32)
    np.testing.assert_array_equal(parsed, ours)  # the text round-trips every float32 exactly
    cos = (parsed * expected).sum(axis=1) / np.linalg.norm(parsed, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() >= 0.9999  # sentence-transformers' own vectors


def test_model_names_folders_and_the_hugging_face_cache(tmp_path, monkeypatch):
    packaged = GenerateEmbeddings("all-MiniLM-L6-v2").model
    assert GenerateEmbeddings("sentence-transformers/all-MiniLM-L6-v2").model is packaged
    assert GenerateEmbeddings("ALL-MINILM-L6-V2", device="cpu").model is packaged
    folder = GenerateEmbeddings(str(packaged_model_dir()))
    assert folder.model.path == packaged_model_dir() and folder.device == "cuda"
    # sentence-transformers keeps downloaded models in the hub cache: models--org--name/snapshots/<rev>
    cache = tmp_path / "hub"
    repo = cache / "models--sentence-transformers--paraphrase-MiniLM-L3-test"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots").mkdir()
    (repo / "snapshots" / "abc123").symlink_to(packaged_model_dir(), target_is_directory=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for name in ("paraphrase-MiniLM-L3-test", "sentence-transformers/paraphrase-MiniLM-L3-test"):
        model = GenerateEmbeddings(name).model
        assert model.path == repo / "snapshots" / "abc123"
        np.testing.assert_array_equal(model.encode(["a cat"]), packaged.encode(["a cat"]))


def test_a_model_it_cannot_serve_is_named_with_what_is_supported(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(
        GioError, match=r"^model_name: 'bert-base-uncased' is neither a model folder nor"
    ) as err:
        GenerateEmbeddings("bert-base-uncased")
    assert "all-MiniLM-L6-v2" in str(err.value) and "downloads nothing" in str(err.value)
    with pytest.raises(GioError, match=r"^model_name: '\./no/such/folder' is neither"):
        GenerateEmbeddings("./no/such/folder")
    with pytest.raises(TypeError, match=r"^model_name: expected a model name or folder, got int"):
        GenerateEmbeddings(3)


def test_file_errors_name_the_argument(tmp_path, capsys):
    gen = GenerateEmbeddings("all-MiniLM-L6-v2")
    with pytest.raises(GioError, match=r"^input_file_path: cannot read .*missing\.txt"):
        gen.generate_embeddings(str(tmp_path / "missing.txt"), str(tmp_path / "out.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(GioError, match=r"^input_file_path: .*latin1\.txt is not UTF-8 text: line 1"):
        gen.generate_embeddings(str(tmp_path / "latin1.txt"), str(tmp_path / "out.txt"))
    (tmp_path / "ok.txt").write_text("hello\n")
    capsys.readouterr()
    with pytest.raises(GioError, match=r"^output_file_path: .*the directory .*nowhere does not exist"):
        gen.generate_embeddings(str(tmp_path / "ok.txt"), str(tmp_path / "nowhere" / "out.txt"))
    assert "Generating Embeddings" not in capsys.readouterr().out  # refused before the long part
    assert not (tmp_path / "out.txt").exists()


def test_module_is_importable_the_references_way():
    from gio_rs import generate_text_embeddings

    assert generate_text_embeddings is module and module.GenerateEmbeddings is GenerateEmbeddings
