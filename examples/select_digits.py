"""Select training data for a target with GIO, on a real data set.

The pool is scikit-learn's bundled handwritten digits (1797 images of 8×8 pixels, 64 features).
The target is a small sample showing only the digits 0 and 1, the kind of small in-domain sample
GIO is made for. GIO picks pool rows until the KL estimate stops falling; the selection should be
dominated by 0s and 1s although it never sees a label.

It uses ``v_init="jump"`` (each descent starts from a random target row). With the default
``"mean"`` every descent starts from the target's mean and, because the averaged estimator's
gradient does not depend on what is already selected, the selection is the pool ordered by
distance to one slowly moving point: here, 0s only (try ``--v-init mean``).

Run: scripts/example.sh   (or: python examples/select_digits.py --target-digits 3 8 --seed 1)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

import gio_rs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target-digits", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--target-size", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--v-init", default="jump", choices=["mean", "prev_opt", "jump"])
    args = parser.parse_args()

    digits = load_digits()
    pool = (digits.data / 16.0).astype(np.float32)
    labels = digits.target
    rng = np.random.default_rng(args.seed)
    candidates = np.flatnonzero(np.isin(labels, args.target_digits))
    target_rows = rng.choice(candidates, size=args.target_size, replace=False)
    target = pool[target_rows]

    start = time.perf_counter()
    selection = gio_rs.select(pool, target, k=5, max_iter=400, v_init=args.v_init, seed=args.seed)
    seconds = time.perf_counter() - start

    chosen = labels[selection.indices]
    print(f"pool: {len(pool)} digit images, {pool.shape[1]} features (float32)")
    print(f"target: {len(target)} images of digits {args.target_digits}")
    print(f"selected {len(selection)} rows in {seconds:.2f} s, stop reason: {selection.stop_reason}")
    print(f"KL(target || selection): {selection.kl_start:.3f} at the start -> {selection.kl_final:.3f}")
    print("first 20 selected pool rows:", selection.indices[:20].tolist())
    print("digit   share of pool   share of selection")
    for digit in range(10):
        pool_share = np.mean(labels == digit)
        sel_share = np.mean(chosen == digit) if len(chosen) else 0.0
        marker = "  <- target" if digit in args.target_digits else ""
        print(f"  {digit}      {pool_share:6.1%}          {sel_share:6.1%}{marker}")
    in_target = np.mean(np.isin(chosen, args.target_digits)) if len(chosen) else 0.0
    print(
        f"{in_target:.1%} of the selection shows a target digit (the pool has "
        f"{np.mean(np.isin(labels, args.target_digits)):.1%}); no label was used."
    )


if __name__ == "__main__":
    main()
