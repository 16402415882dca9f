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
    return Path(os.environ.get("GIO_FIXTURES_DIR", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def reference_npz():
    """The real grad-info-opt outputs (../shared/fixtures/reference_public.npz)."""
    path = fixtures_dir() / "reference_public.npz"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"fixtures missing in CI: {path}")
        pytest.skip(f"fixtures not found at {path} (set GIO_FIXTURES_DIR)")
    data = np.load(path)
    return data, json.loads(str(data["meta_json"]))
