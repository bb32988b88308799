"""The layers import one way (core <- strategies, prm <- server <- bench):
the contract is import-linter's, in pyproject.toml, so the rule and its
check are one text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_imports_flow_one_way() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_no_source_file_over_500_lines() -> None:
    folders = ["core", "strategies", "prm", "server", "bench"]
    long = {str(path.relative_to(ROOT)): n for folder in folders
            for path in (ROOT / folder).rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 500}
    assert not long, f"split these by concern: {long}"


def test_every_package_is_installed() -> None:
    """An installed (not editable) ponder, as in the images, has only the
    packages pyproject.toml lists: a new folder must be listed too."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    roots = {folder: name for name, folder in setuptools["package-dir"].items()}
    found = {
        roots[init.relative_to(ROOT).parts[0]] + "".join(
            f".{part}" for part in init.relative_to(ROOT).parent.parts[1:])
        for folder in roots for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
