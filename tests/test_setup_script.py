"""scripts/setup.sh with $GIO_VENV outside the checkout builds gio_rs into that venv, even run
from another directory and with another venv activated (maturin develop would otherwise install
into $VIRTUAL_ENV or a .venv it finds, or stop with "Couldn't find a virtualenv"). Quick when the
checkout is already built: cargo reuses target/, pip its cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "setup.sh"


@pytest.mark.skipif(not SETUP.exists(), reason="not run from a checkout")
def test_setup_into_a_venv_outside_the_checkout(tmp_path):
    venv = tmp_path / "elsewhere" / "venv"
    venv.parent.mkdir()
    lib = next((REPO / "python" / "gio_rs").glob("_core*.so"))
    lib_inode = lib.stat().st_ino
    env = dict(
        os.environ,
        GIO_VENV=str(venv),
        VIRTUAL_ENV=str(Path(sys.prefix)),  # as if this test's venv were activated
        CONDA_PREFIX=str(tmp_path / "conda"),  # maturin refuses both at once
    )
    done = subprocess.run(
        ["bash", str(SETUP)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The extension this process loaded was replaced by a new file, not rewritten under it.
    assert lib.stat().st_ino != lib_inode

    check = (
        "import gio_rs, numpy as np; rng = np.random.default_rng(0); "
        "s = gio_rs.select(rng.normal(size=(60, 3)), rng.normal(size=(10, 3)), k=2, max_iter=5, seed=0); "
        "print(gio_rs.__file__); print(len(s.indices))"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", check],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    module_file, selected = done.stdout.split()
    assert Path(module_file) == REPO / "python" / "gio_rs" / "__init__.py"  # an editable install
    assert int(selected) > 0
    version = subprocess.run(
        [str(venv / "bin" / "gio-rs"), "--version"], capture_output=True, text=True, timeout=300
    )
    assert version.returncode == 0 and version.stdout.startswith("gio_rs "), version.stderr
