"""Sentence embedding speed and peak memory: `gio_rs.embed` (all-MiniLM-L6-v2, NumPy forward pass) at
batch sizes 1, 32 and 256, against a plain unbatched run of the same code (one `encode([s])` call per
sentence) in the same run. No torch-free peer exists to compare with (sentence-transformers, fastembed's
ONNX runtime and the like each bring a runtime of their own), so the baseline is our own per-sentence
loop; a second check runs the batches serially with NumPy's multi-threaded BLAS, the alternative to
gio_rs's worker threads over single-threaded BLAS.

Each configuration runs in a fresh process, so `ru_maxrss` is that configuration's peak (the model
and Python take about 210 MB of it; "model only" shows that baseline).

    python benches/bench_embed.py [--n 512] [--n-unbatched 192] [--words 4 40] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# (label, batch size, how); "per-sentence" is the peer every ratio is taken against.
CONFIGS = [
    ("model only", 0, "load"),
    ("gio_rs.embed, batch 1", 1, "embed"),
    ("gio_rs.embed, batch 32", 32, "embed"),
    ("gio_rs.embed, batch 256", 256, "embed"),
    ("serial, multi-threaded BLAS, batch 32", 32, "blas-threads"),
    ("per-sentence encode([s]) loop", 1, "per-sentence"),
]
PEER = "per-sentence"


def make_sentences(n: int, min_words: int, max_words: int, vocab: list[str]) -> list[str]:
    """Deterministic sentences of whole-word vocabulary entries (one token each)."""
    rng = np.random.default_rng(0)
    return [
        " ".join(rng.choice(vocab, size=int(rng.integers(min_words, max_words + 1)))).capitalize() + "."
        for _ in range(n)
    ]


def run_one(how: str, batch_size: int, n: int, words: tuple[int, int], repeat: int) -> dict:
    """In a child process: time one configuration, report its sentences/s and peak memory."""
    from gio_rs.embed import load_model

    model = load_model()
    vocab = sorted(w for w in model._tokenizer(512).get_vocab() if w.isalpha() and len(w) > 2)
    sentences = make_sentences(n, *words, vocab)
    tokens = sum(len(e.ids) for e in model._tokenizer(model.max_seq_length).encode_batch(sentences))
    if how == "load":
        run = None
    elif how == "embed":

        def run():
            model.encode(sentences, batch_size=batch_size)

    elif how == "per-sentence":

        def run():
            for sentence in sentences:
                model.encode([sentence])

    elif how == "blas-threads":
        from gio_rs.embed import _forward_passes

        tokenizer = model._tokenizer(model.max_seq_length)
        order = np.argsort([-len(s) for s in sentences], kind="stable")

        def run():
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size].tolist()
                encodings = tokenizer.encode_batch([sentences[i] for i in rows])
                for _, input_ids, mask in _forward_passes(rows, [e.ids for e in encodings]):
                    model._pool(model._bert.forward(input_ids, mask), mask)

    else:
        raise ValueError(how)
    seconds = float("nan")
    if run is not None:
        model.encode(sentences[:64], batch_size=max(batch_size, 1))  # warm caches and BLAS threads
        seconds = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            seconds = min(seconds, time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {"seconds": seconds, "n": n, "tokens": tokens, "peak_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=512, help="sentences per batched configuration")
    parser.add_argument("--n-unbatched", type=int, default=192, help="sentences for batch 1 and the loop")
    parser.add_argument("--words", type=int, nargs=2, default=(4, 40), metavar=("MIN", "MAX"))
    parser.add_argument("--repeat", type=int, default=1, help="best of this many timed passes")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: JSON of one configuration
    args = parser.parse_args()

    if args.one:
        how, batch_size, n = args.one.split(":")
        print(json.dumps(run_one(how, int(batch_size), int(n), tuple(args.words), args.repeat)))
        return

    print(
        f"all-MiniLM-L6-v2 embeddings, {os.cpu_count()} CPUs, sentences of {args.words[0]}-{args.words[1]} "
        f"words, best of {args.repeat}"
    )
    rows = []
    for label, batch_size, how in CONFIGS:
        n = args.n if batch_size > 1 else args.n_unbatched
        if how == "load":
            n = 1
        cmd = [sys.executable, __file__, "--one", f"{how}:{batch_size}:{n}", "--repeat", str(args.repeat)]
        cmd += ["--words", *map(str, args.words)]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        rows.append((label, how, result))
        rate = result["n"] / result["seconds"] if how != "load" else float("nan")
        print(f"  {label:40s} {rate:8.1f} sentences/s   peak {result['peak_mb']:7.0f} MB", flush=True)

    peer = next(r for _, how, r in rows if how == PEER)
    peer_rate = peer["n"] / peer["seconds"]
    print(f"\nmean tokens per sentence: {peer['tokens'] / peer['n']:.1f}")
    print(f"{'configuration':40s} {'sent/s':>9s} {'tokens/s':>9s} {'peak MB':>8s} {'vs per-sentence':>16s}")
    for label, how, result in rows:
        if how == "load":
            print(f"{label:40s} {'':>9s} {'':>9s} {result['peak_mb']:8.0f}")
            continue
        rate = result["n"] / result["seconds"]
        tokens = result["tokens"] / result["seconds"]
        print(f"{label:40s} {rate:9.1f} {tokens:9.0f} {result['peak_mb']:8.0f} {rate / peer_rate:15.2f}x")


if __name__ == "__main__":
    main()
