#!/usr/bin/env bash
# make docker-test: the CPU image, built, started, called and stopped for real.
#
#  1. installs docker.io, debootstrap and docker-compose (apt) when missing
#  2. lints: hadolint on every Dockerfile, `compose config` (docker-lint.sh)
#  3. starts dockerd (--bridge=none --iptables=false) when none runs, and
#     stops it again at the end
#  4. builds a local Python 3.11 bookworm base image with debootstrap (no
#     registry is needed; the root filesystem is cached in $PONDER_DOCKER_CACHE)
#  5. builds docker/Dockerfile.cpu on it with BuildKit
#  6. runs the image with --network host on a free port and an API key, waits
#     until Docker reports it healthy
#  7. sends a chat request, a streaming one and a best-of-N one (scored by the
#     step checker, the PRM of compose's CPU profile) with the official openai
#     client (from $VENV), and checks that a request with a wrong key is refused
#  8. `docker stop`s it and checks that it shut down by itself (uvicorn's
#     "Finished server process", exit status 0 or 143) within the stop timeout
#  9. removes the container and the image it built
#
# Environment:
#   VENV                    the venv with the openai client and hadolint (.venv)
#   PONDER_DOCKER_CACHE     where the debootstrap root filesystem is cached
#                           (/var/cache/ponder-docker)
#   DOCKER_TEST_ALLOW_SKIP  1: where Docker cannot run at all, print SKIPPED
#                           and exit 0. Otherwise that is a failure (exit 1).
#   DOCKER_TEST_KEEP_IMAGE  1: keep the built image (tag ponder:cpu-test)
#
# Where Docker cannot run, this says so and exits non-zero unless told to skip;
# a skipped run never prints PASSED.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

venv="${VENV:-.venv}"
python="$venv/bin/python"
image="ponder:cpu-test"
container="ponder-docker-test-$$"
stop_timeout=30
health_timeout=900  # the engine starts in ~1 min alone; a busy 2-core machine is slower
api_key="docker-test-key-$RANDOM$RANDOM"

work="$(mktemp -d -t ponder-docker-test.XXXXXX)"
t_start=$SECONDS
script_name=docker-test
# shellcheck source=scripts/docker-lib.sh
. scripts/docker-lib.sh

cleanup() {
  local status=$?
  set +e
  if [ -n "$docker" ]; then
    "$docker" rm -f "$container" > /dev/null 2>&1
    if [ "${DOCKER_TEST_KEEP_IMAGE:-}" != 1 ]; then
      "$docker" image rm -f "$image" > /dev/null 2>&1
    fi
  fi
  docker_daemon_stop
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'say "FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# -------------------------------------------------------------- 1. packages
docker_ready

# ------------------------------------------------------------------ 2. lint
VENV="$venv" scripts/docker-lint.sh

# ---------------------------------------------------------------- 3. daemon
docker_daemon

# ------------------------------------------------------------ 4. base image
docker_base_image

# ------------------------------------------------------------ 5. CPU image
build_args=(--build-arg "BASE_IMAGE=$base_image")
# torch's CPU wheel: the host's pip find-links, when it has the pinned
# one (a build cannot see that folder), else PyTorch's CPU index (the
# Dockerfile's default).
torch_pin="$(sed -n 's/^torch==//p' requirements/cpu-constraints.txt)"
torch_wheel=""
find_links="${PIP_FIND_LINKS:-$("$python" -m pip config get global.find-links 2> /dev/null || true)}"
for dir in $find_links; do
  dir="${dir#file://}"
  for whl in "$dir"/torch-"${torch_pin}"-*.whl; do
    [ -f "$whl" ] && torch_wheel="$whl" && break 2
  done
done
rm -f docker/wheels/torch-*.whl
if [ -n "$torch_wheel" ]; then
  mkdir -p docker/wheels
  ln "$torch_wheel" docker/wheels/ 2> /dev/null || cp "$torch_wheel" docker/wheels/
  build_args+=(--build-arg PIP_EXTRA_INDEX_URL=)
  say "torch $torch_pin from $torch_wheel"
fi
# pip's CA bundle, as a build secret, only when there is one.
mapfile -t -O "${#build_args[@]}" build_args < <(docker_pip_cert_args)

say "building $image from docker/Dockerfile.cpu (log $work/build.log)"
t=$SECONDS
if ! "$docker" build --network host --progress plain -f docker/Dockerfile.cpu \
    "${build_args[@]}" -t "$image" . > "$work/build.log" 2>&1; then
  tail -60 "$work/build.log" >&2
  say "FAILED: the image did not build" >&2
  exit 1
fi
build_s=$(elapsed $t)
rm -f docker/wheels/torch-*.whl
size_bytes="$("$docker" image inspect -f '{{.Size}}' "$image")"
size_mb=$((size_bytes / 1000000))
say "built in ${build_s} s; image size ${size_mb} MB"

# Not root, and no build-only file (source tree, torch wheel, CA secret,
# constraints) anywhere in the image.
user="$("$docker" image inspect -f '{{.Config.User}}' "$image")"
case "${user%%:*}" in
  "" | 0 | root) say "FAILED: the image runs as root (USER '$user')" >&2; exit 1 ;;
esac
leftovers="$("$docker" run --rm --network none --user 0 --entrypoint sh "$image" -c \
  'ls -d /src /run/secrets/pip_cert 2>/dev/null;
   find / -xdev \( -name "torch-*.whl" -o -name pip_cert -o -name cpu-constraints.txt -o -name install.sh \) -print')"
if [ -n "$leftovers" ]; then
  say "FAILED: build-only files in the image: $leftovers" >&2
  exit 1
fi
say "runs as user $user; no build-only files in the image"

# ------------------------------------------------------------------ 6. run
port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "running $container on 127.0.0.1:$port (--network host)"
t=$SECONDS
# --shm-size: vLLM's CPU engine talks to its worker through ~400 MiB of
# shared memory; Docker's default /dev/shm is 64 MiB.
"$docker" run -d --name "$container" --network host --shm-size=1g \
  -e PONDER_PORT="$port" -e PONDER_API_KEY="$api_key" -e PONDER_KV_CACHE_GB=1 \
  -e PONDER_PRM=checker=step-checker -e PONDER_DEFAULT_PRM=checker \
  "$image" > /dev/null
health=""
while [ $((SECONDS - t)) -lt $health_timeout ]; do
  health="$("$docker" inspect -f '{{.State.Status}}/{{.State.Health.Status}}' "$container")"
  case "$health" in
    running/healthy) break ;;
    running/*) sleep 2 ;;
    *) break ;;
  esac
done
if [ "$health" != running/healthy ]; then
  "$docker" logs --tail 80 "$container" >&2 || true
  say "FAILED: container is $health after $(elapsed $t) s" >&2
  exit 1
fi
healthy_s=$(elapsed $t)
say "healthy after ${healthy_s} s"

# ----------------------------------------------------------- 7. API calls
if ! "$python" - "$port" "$api_key" <<'EOF'
import sys

import openai

port, key = sys.argv[1], sys.argv[2]
base_url = f"http://127.0.0.1:{port}/v1"
messages = [{"role": "user", "content": "What is 6 - 18?"}]

try:
    openai.OpenAI(base_url=base_url, api_key="wrong-key").models.list()
    raise SystemExit("a request with the wrong key was accepted")
except openai.AuthenticationError:
    print("docker-test: wrong API key refused (401)")

client = openai.OpenAI(base_url=base_url, api_key=key, timeout=120, max_retries=0)
models = [m.id for m in client.models.list().data]
assert models, "no models listed"
model = models[0]

reply = client.chat.completions.create(model=model, messages=messages, max_tokens=32, temperature=0)
text = reply.choices[0].message.content
assert isinstance(text, str) and text.strip(), f"empty answer: {reply}"
assert reply.usage and reply.usage.completion_tokens > 0, f"no usage: {reply}"
print(f"docker-test: chat ({model}): {text.strip()[:80]!r}")

stream = client.chat.completions.create(
    model=model, messages=messages, max_tokens=32, temperature=0, stream=True
)
pieces, finish = [], None
for chunk in stream:
    for choice in chunk.choices:
        pieces.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
streamed = "".join(pieces)
assert streamed.strip(), "empty stream"
assert finish in ("stop", "length"), f"stream ended without finish_reason: {finish}"
print(f"docker-test: streamed {len(pieces)} chunks, finish_reason={finish}: {streamed.strip()[:80]!r}")

# best-of-N scored by the PRM the compose CPU profile configures (step checker).
best = client.chat.completions.create(
    model=model, messages=messages, max_tokens=48, temperature=0.7,
    extra_body={"strategy": {"name": "best_of_n", "n": 3}},
)
details = (best.model_extra or {}).get("ponder") or {}
assert best.choices[0].message.content, f"empty best_of_n answer: {best}"
assert details.get("strategy", {}).get("name") == "best_of_n", f"not best_of_n: {details}"
assert details.get("samples") == 3, f"expected 3 samples: {details}"
print(f"docker-test: best_of_n (PRM checker): {details.get('samples')} samples, scores {details.get('scores')}")
EOF
then
  "$docker" logs --tail 60 "$container" >&2 || true
  say "FAILED: API calls" >&2
  exit 1
fi

# ------------------------------------------------------------------ 8. stop
t=$SECONDS
"$docker" stop -t "$stop_timeout" "$container" > /dev/null
stop_s=$(elapsed $t)
state="$("$docker" inspect -f '{{.State.ExitCode}} oom={{.State.OOMKilled}}' "$container")"
exit_code="${state%% *}"
# uvicorn drains, shuts the engine down, then re-raises SIGTERM: 143 (or 0) is
# a clean stop; 137 means Docker had to SIGKILL it at the timeout.
if { [ "$exit_code" != 0 ] && [ "$exit_code" != 143 ]; } || [ "$stop_s" -ge "$stop_timeout" ] \
    || ! "$docker" logs "$container" 2>&1 | grep -q 'Finished server process'; then
  "$docker" logs --tail 40 "$container" >&2 || true
  say "FAILED: docker stop took ${stop_s} s (timeout ${stop_timeout} s), exit status $state" >&2
  exit 1
fi
say "stopped cleanly on SIGTERM in ${stop_s} s (exit status $exit_code, server finished)"

say "PASSED: build ${build_s} s, image ${size_mb} MB, healthy after ${healthy_s} s, stop ${stop_s} s, total $(elapsed $t_start) s"
