"""Progress reporting for the selection loop. The Rust core calls `start` once and `candidate`
after every candidate (with the GIL held briefly, between iterations); this fans the calls out to
a user callback, a tqdm bar and the reference's print lines."""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, NamedTuple, Optional


class CandidateEvent(NamedTuple):
    """One evaluated candidate, as passed to a `callback`."""

    candidate: int
    """Candidates evaluated so far, this one included."""
    iteration: int
    """The reference's iteration counter (steps back on a pool reset)."""
    selected: int
    """Rows accepted so far."""
    kl: float
    """KL estimate with this candidate added."""
    accepted: bool
    reset: bool
    """This candidate made the loop refill the pool."""
    num_resets: int


class Reporter:
    """Receives the core's calls. `print_reference` mimics the reference's stdout lines."""

    def __init__(
        self,
        callback: Optional[Callable[[CandidateEvent], Any]] = None,
        progress: bool = False,
        total: Optional[int] = None,
        print_reference: bool = False,
    ) -> None:
        self._callback = callback
        self._print = print_reference
        self._bar = make_bar(total) if progress else None

    def start(self, kl_start: float, scale_factor: float) -> None:
        if self._print:
            print("Starting KL: " + str(kl_start))

    def candidate(
        self,
        candidate: int,
        iteration: int,
        selected: int,
        kl: float,
        accepted: bool,
        reset: bool,
        num_resets: int,
    ) -> None:
        if self._print:
            print("KL Divergence at iteration " + str(iteration) + ": " + str(kl))
            if reset:
                print("KL Div Increase, Resetting G")
        if self._bar is not None:
            if accepted:
                self._bar.update(1)
            self._bar.set_postfix(kl=f"{kl:.5g}", resets=num_resets, refresh=False)
        if self._callback is not None:
            self._callback(CandidateEvent(candidate, iteration, selected, kl, accepted, reset, num_resets))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _StderrBar:
    """A minimal stand-in for tqdm when it is not installed."""

    def __init__(self, total: Optional[int], unit: str = "row", desc: str = "gio_rs select") -> None:
        self.n, self.total, self._postfix = 0, total, ""
        self._label = f"{desc}: {{n}}{{total}} {unit}s"

    def reset(self, total: Optional[int] = None) -> None:
        self.n, self.total = 0, total

    def update(self, n: int) -> None:
        self.n += n
        self._draw()

    def set_postfix(self, refresh: bool = True, **kwargs: Any) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        self._draw()

    def _draw(self) -> None:
        total = f"/{self.total}" if self.total else ""
        sys.stderr.write("\r" + self._label.format(n=self.n, total=total) + f"  {self._postfix}   ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def make_bar(total: Optional[int], unit: str = "row", desc: str = "gio_rs select") -> Any:
    try:
        with warnings.catch_warnings():  # tqdm.auto may warn about notebook widgets
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
    except ImportError:
        return _StderrBar(total, unit=unit, desc=desc)
    return tqdm(total=total, unit=unit, desc=desc)


class IterationBar:
    """A K-Means progress bar: one tick per Lloyd iteration, the inertia as postfix. A new run
    (n_init > 1) starts again from zero on the same bar."""

    def __init__(self, total: int, desc: str) -> None:
        self._bar = make_bar(total, unit="iter", desc=desc)

    def __call__(self, iteration: int, inertia: float) -> None:
        if iteration <= self._bar.n:
            self._bar.reset(total=self._bar.total)
        self._bar.update(iteration - self._bar.n)
        self._bar.set_postfix(inertia=f"{inertia:.6g}", refresh=False)

    def close(self) -> None:
        self._bar.close()
