"""The served model cut after its first L decoder layers, for the probe.

The probe reads the hidden state after layer L. vLLM's pooling runner gives
the hidden state after the model's last layer (through its final norm), and
it refuses a checkpoint with more layers than its configuration says, so a
``num_hidden_layers`` override alone cannot cut the model. A copy of the
checkpoint whose configuration has L layers and whose weights stop at layer
L does: the pooling engine then runs L layers instead of all of them (the
cost of the probe falls with it) and returns the final norm of the hidden
state after layer L, which is what the fit reads.

The copy is written once per model and layer under a cache directory (the
server's), beside the others, and later starts find it; it holds the
weights of the layers it keeps (for a 7B model cut halfway, about half its
size on disk), and links to the tokenizer's files.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

LAYER_NAME = re.compile(r"(?:^|\.)layers\.(\d+)\.")
WEIGHTS = "*.safetensors"
INDEX = "model.safetensors.index.json"


def model_layers(model_dir: Path) -> int | None:
    layers = json.loads((model_dir / "config.json").read_text()).get("num_hidden_layers")
    return layers if isinstance(layers, int) else None


def cut_model(model_dir: Path, layers: int, cache: Path) -> Path:
    """``model_dir`` cut after ``layers`` decoder layers, written under
    ``cache`` on first use. Servers that start together write it once: the
    others wait for the first and find it done."""
    target = cache / f"{model_dir.name}-{_weights_key(model_dir)}-layers-{layers}"
    if (target / "config.json").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(cache / f".{target.name}.lock"):
        if not (target / "config.json").exists():
            _write_cut(model_dir, layers, target)
    return target


def _weights_key(model_dir: Path) -> str:
    """Which weights are cut: the directory and its weight files' sizes and
    times, so new weights at the same path are cut again (the model's
    fingerprint names its architecture and tokenizer, not its weights)."""
    parts = [str(model_dir.resolve())]
    for path in sorted(model_dir.glob(WEIGHTS)):
        status = path.stat()
        parts.append(f"{path.name}:{status.st_size}:{status.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _write_cut(model_dir: Path, layers: int, target: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    staging = Path(tempfile.mkdtemp(prefix=".cut-", dir=target.parent))
    try:
        staging.chmod(0o755)
        kept: dict[str, str] = {}
        for shard in sorted(model_dir.glob(WEIGHTS)):
            with safe_open(str(shard), framework="pt") as weights:
                tensors = {name: weights.get_tensor(name) for name in weights.keys()
                           if _keeps(name, layers)}
                metadata = weights.metadata()
            if tensors:
                save_file(tensors, str(staging / shard.name), metadata=metadata)
                kept.update(dict.fromkeys(tensors, shard.name))
        if (model_dir / INDEX).exists():
            index = json.loads((model_dir / INDEX).read_text())
            index["weight_map"] = {name: kept[name] for name in index["weight_map"]
                                   if name in kept}
            (staging / INDEX).write_text(json.dumps(index, indent=2))
        (staging / "config.json").write_text(json.dumps(
            _cut_config(json.loads((model_dir / "config.json").read_text()), layers), indent=2))
        for other in model_dir.iterdir():
            if other.is_file() and not (staging / other.name).exists() \
                    and not other.match(WEIGHTS) and other.name != INDEX:
                (staging / other.name).symlink_to(other.resolve())
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _keeps(name: str, layers: int) -> bool:
    match = LAYER_NAME.search(name)
    return match is None or int(match.group(1)) < layers


def _cut_config(config: dict, layers: int) -> dict:
    """The configuration with ``layers`` layers (and, where the model lists
    each layer's kind of attention, the first ``layers`` of them)."""
    cut = {**config, "num_hidden_layers": layers}
    if isinstance(config.get("layer_types"), list):
        cut["layer_types"] = config["layer_types"][:layers]
    return cut
