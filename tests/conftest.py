"""Shared test setup: hypothesis profiles and the real-reference fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# GIO_TEST_PROFILE=thorough runs many more generated cases; "ci" is the default.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=15, deadline=None)
settings.load_profile(os.environ.get("GIO_TEST_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]


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


# Lines a test module wants shown after the run (the robustness suite's example counts).
SUMMARY_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
