"""No file of the repository, and no data file ponder installs, names a
directory of the machine it was made on: a home, a workspace or a temporary
directory. The container paths the Dockerfiles and compose files set on
purpose are listed below."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINE_DIRS = ("root", "home", "work", "workspace", "tmp", "var/tmp", "Users", "mnt/data")
MACHINE_PATH = re.compile(r"(?<![\w.:/-])/(?:" + "|".join(MACHINE_DIRS) + r")(?:/[\w.@+-]+)*/?")
"""An absolute path under one of MACHINE_DIRS (a URL's path is not one)."""
SET_ON_PURPOSE = {
    "docker/Dockerfile": {"/tmp/base-pins.txt", "/home/ponder"},
    "docker/Dockerfile.cpu": {"/root/.cache/pip", "/home/ponder"},
    "docker/compose.yaml": {"/root/.cache/huggingface"},
    "docker/compose.fleet.yaml": {"/root/.cache/huggingface"},
    "tests/unit/test_policy_file.py": {"/home/someone/data/mine.jsonl"},
    "tests/unit/test_redaction.py": {"/home/someone/data/mine.jsonl"},
}
"""Paths inside the images (the build's scratch file, the unprivileged
user's home, the build cache and vLLM's image's Hugging Face cache), and the
path the policy tests hand ``shown_source`` to see it cut to the file name."""
BINARY = (".png", ".whl", ".gguf", ".safetensors")


def _tracked() -> list[Path]:
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
        return [ROOT / name for name in listed if name]
    return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]


def _found(path: Path, allowed: set[str]) -> list[str]:
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return []
    return sorted({m.group(0).rstrip("/") for m in MACHINE_PATH.finditer(text)} - allowed)


@pytest.mark.parametrize("text", ["/root/x", "see /home/me/a.py", "/work/shared/data/g.jsonl",
                                  "/tmp/x.log", "(/Users/me/ponder)"])
def test_the_pattern_finds_machine_paths(text: str) -> None:
    assert MACHINE_PATH.search(text)


@pytest.mark.parametrize("text", ["https://example.com/home/x", "bench/results/work/x",
                                  "~/.cache/ponder", "/v1/chat/completions", "/opt/ponder-cache"])
def test_the_pattern_leaves_other_paths_alone(text: str) -> None:
    assert MACHINE_PATH.search(text) is None


def test_no_tracked_file_names_a_machine_path() -> None:
    this = Path(__file__).resolve()
    problems = {}
    for path in _tracked():
        if path.suffix in BINARY or path.resolve() == this or not path.is_file():
            continue
        relative = path.relative_to(ROOT).as_posix()
        found = _found(path, SET_ON_PURPOSE.get(relative, set()))
        if found:
            problems[relative] = found
    assert not problems, f"machine paths: {problems}"


def test_no_installed_data_file_names_a_machine_path() -> None:
    problems = {}
    for package in ("ponder.server",):
        pending = [files(package)]
        while pending:
            entry = pending.pop()
            if entry.is_dir():
                pending += [child for child in entry.iterdir() if child.name != "__pycache__"]
            elif not entry.name.endswith((".py", *BINARY)):
                found = _found(Path(str(entry)), set())
                if found:
                    problems[str(entry)] = found
    assert not problems, f"machine paths in package data: {problems}"
