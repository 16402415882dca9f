"""Shared test setup: hypothesis profiles and their seed, and the real-reference fixtures."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

# GIO_TEST_PROFILE=thorough runs many more generated cases (a fresh random seed each run); "ci",
# the default, is seeded from the commit (see ci_seed).
PROFILE = os.environ.get("GIO_TEST_PROFILE", "ci")
settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=15, deadline=None)
settings.load_profile(PROFILE)


def ci_seed() -> tuple[int, str]:
    """The ci profile's hypothesis seed and where it came from: $GIO_TEST_SEED, else the commit
    under test (new examples on every commit, the same ones on every run of one commit), else 0
    outside a git checkout."""
    if os.environ.get("GIO_TEST_SEED"):
        return int(os.environ["GIO_TEST_SEED"]), "GIO_TEST_SEED"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        return int(head[:16], 16), f"commit {head[:12]}"
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0, "not a git checkout"


SEED_ORIGIN: list[str] = []


@pytest.hookimpl(tryfirst=True)  # before hypothesis's own plugin reads --hypothesis-seed
def pytest_configure(config):
    if PROFILE == "ci" and config.getoption("hypothesis_seed", None) is None:
        seed, origin = ci_seed()
        config.option.hypothesis_seed = str(seed)
        SEED_ORIGIN.append(origin)


def seed_line(config) -> str:
    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        return f"hypothesis profile {PROFILE!r}: a random seed per test (printed with a failure)"
    origin = SEED_ORIGIN[0] if SEED_ORIGIN else "--hypothesis-seed"
    return (
        f"hypothesis profile {PROFILE!r}, seed {seed} ({origin}); GIO_TEST_SEED={seed} reruns these examples"
    )


def pytest_report_header(config):
    return seed_line(config)


def fixtures_dir() -> Path:
    """The reference outputs the tests compare with: tests/data (see its README), or
    $GIO_FIXTURES_DIR."""
    return Path(os.environ.get("GIO_FIXTURES_DIR", REPO / "tests" / "data"))


def fixture_path(name: str) -> Path:
    """A fixture file; a missing one fails the test (it is part of the repository, never optional)."""
    path = fixtures_dir() / name
    if not path.is_file():
        pytest.fail(
            f"fixture missing: {path} (tests/data is part of the repository; GIO_FIXTURES_DIR overrides it)"
        )
    return path


@pytest.fixture(scope="session")
def reference_npz():
    """The real grad-info-opt outputs (tests/data/reference_public.npz)."""
    data = np.load(fixture_path("reference_public.npz"))
    return data, json.loads(str(data["meta_json"]))


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for every Spark test module (a session costs seconds to start)."""
    import gio_rs.spark as gs  # pyspark is an extra: imported only by the tests that ask for it

    session = gs.session(
        "local[2]",
        app_name="gio_rs-tests",
        config={
            "spark.sql.shuffle.partitions": 4,
            "spark.default.parallelism": 2,
            "spark.driver.memory": "1g",
        },
    )
    yield session
    session.stop()


# Lines a test module wants shown after the run (the robustness suite's example counts).
SUMMARY_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus):
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
    if exitstatus != 0:  # the seed again, next to the failures
        terminalreporter.write_line(seed_line(terminalreporter.config))
