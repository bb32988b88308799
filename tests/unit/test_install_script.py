"""scripts/install.sh takes the pinned `+cpu` torch from where pip is
configured to look, and adds PyTorch's CPU index only where it is not
there: so `make serve` works on a stock machine and on a mirror alike."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TORCH_PIN = next(line for line in (ROOT / "requirements/cpu-constraints.txt").read_text().split()
                 if line.startswith("torch=="))


def _fake_wheel(folder: Path) -> None:
    """A wheel that carries only the pinned torch's name and version: all
    a dry run reads."""
    version = TORCH_PIN.removeprefix("torch==")
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(folder / f"torch-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{info}/METADATA",
                       f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                       "Tag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")


def _dry_run(find_links: Path, tmp_path: Path) -> str:
    """install.sh --dry-run with pip configured by nothing but an empty
    index and ``find_links``."""
    empty_index = tmp_path / "index"
    empty_index.mkdir(exist_ok=True)
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": empty_index.as_uri(),
           "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": str(find_links),
           "PIP_NO_CACHE_DIR": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run([str(ROOT / "scripts/install.sh"), "--dry-run"], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.timeout(600)
def test_torch_from_the_configured_indexes_when_they_have_it(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _fake_wheel(wheels)
    out = _dry_run(wheels, tmp_path)
    assert "from pip's configured indexes" in out
    assert "download.pytorch.org" not in out


@pytest.mark.timeout(600)
def test_pytorchs_cpu_index_is_added_when_they_do_not(tmp_path: Path) -> None:
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    out = _dry_run(nothing, tmp_path)
    assert "adding PyTorch's CPU index https://download.pytorch.org/whl/cpu" in out
