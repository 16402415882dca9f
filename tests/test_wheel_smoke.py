"""scripts/wheel.sh's smoke test fails, with the dynamic loader's message, on a wheel whose
extension cannot load. (Its passing path runs in scripts/test.sh on the real release wheel.)"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import gio_rs
import gio_rs._core

REPO = Path(__file__).resolve().parents[1]
WHEEL_SH = REPO / "scripts" / "wheel.sh"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not WHEEL_SH.exists(),
    reason="needs a checkout on Linux (ELF extension, bash script)",
)

# An import of the extension, renamed in its dynamic string table to a name no library
# defines: what a wheel linked against the wrong Python or library looks like to the loader.
IMPORTED, MISSING = b"PyBool_Type", b"NoSuch_Type"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(folder: Path, files: dict[str, bytes]) -> Path:
    version = gio_rs.__version__
    info = f"gio_rs-{version}.dist-info"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    files = dict(files)
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: gio_rs\nVersion: {version}\nRequires-Dist: numpy>=1.23\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: false\nTag: cp39-abi3-{platform}\n"
    ).encode()
    files[f"{info}/entry_points.txt"] = b"[console_scripts]\ngio-rs = gio_rs.cli:entry_point\n"
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"gio_rs-{version}-cp39-abi3-{platform}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data in files.items():
            whl.writestr(name, data)
    return path


def test_smoke_test_fails_with_the_loaders_message_when_the_extension_cannot_load(tmp_path):
    extension = Path(gio_rs._core.__file__)
    binary = extension.read_bytes()
    whole_name = b"\0" + IMPORTED + b"\0"
    assert whole_name in binary, f"{extension} no longer imports {IMPORTED.decode()}: pick another"
    broken = binary.replace(whole_name, b"\0" + MISSING + b"\0")
    package = Path(gio_rs.__file__).parent
    files = {
        f"gio_rs/{path.name}": path.read_bytes()
        for path in sorted(package.iterdir())
        if path.suffix in (".py", ".pyi") or path.name == "py.typed"
    }
    files[f"gio_rs/{extension.name}"] = broken
    wheel = _write_wheel(tmp_path, files)

    done = subprocess.run(
        ["bash", str(WHEEL_SH), "--no-demo", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "smoke test FAILED: `import gio_rs` raised ImportError" in done.stderr, output
    assert f"undefined symbol: {MISSING.decode()}" in done.stderr, output
    assert "smoke test passed" not in output
