"""What every stage of one `select_stream` call shares: the options, the pool's source, the work
dir, and where stages record their timings and what they reused."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .._util.arrays import check_int
from .._util.progress import make_bar
from ..io.workdir import WorkDir
from .inputs import open_pool


@dataclass
class Context:
    """One run's setting: `options` as `select_stream` collected them, the pool opened as a
    source (`one_shot`: an iterator read once), the work dir, the train and target as given."""

    options: dict
    train: Any
    target: Any
    pool: Any
    batch_rows: int
    one_shot: bool
    work: WorkDir
    timings: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, train: Any, target: Any, options: dict) -> Context:
        batch_rows = check_int("batch_rows", options["batch_rows"], minimum=1)
        pool = open_pool(train, options, batch_rows)
        out = options.get("out")
        scratch = options.get("scratch_dir")
        if scratch is None and out is not None:
            scratch = os.path.dirname(os.path.abspath(os.fspath(out).rstrip("/" + os.sep)))
        work = WorkDir(
            options.get("work_dir"),
            scratch_parent=scratch,
            wait=options.get("wait", False),
            report=options["report"],
        )
        return cls(options, train, target, pool, batch_rows, getattr(pool, "one_shot", False), work)

    @property
    def report(self) -> Callable[[str], None]:
        return self.options["report"]

    @property
    def progress(self) -> bool:
        return self.options["progress"]

    def stage(self, name: str, key: str) -> Optional[dict]:
        """The saved stage `name` made with `key` whose files verify, or None (reported either
        way; a damaged stage is warned about by the work dir)."""
        saved, status = self.work.check(name, key)
        if saved is not None:
            self.reused.append(name)
            self.report(f"work dir: reusing the {name} stage ({self.work.folder})")
        elif status == "other":
            self.report(f"work dir: the {name} stage was made with other inputs or options; redoing it")
        return saved

    def bar(self, total: Optional[int], desc: str) -> Any:
        return make_bar(total, unit="row", desc=desc) if self.progress else None

    def finished(self, name: str, started: float) -> float:
        """Records the seconds stage `name` took since `started`, and returns them."""
        self.timings[name] = time.perf_counter() - started
        return self.timings[name]
