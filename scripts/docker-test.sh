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
cache="${PONDER_DOCKER_CACHE:-/var/cache/ponder-docker}"
base_image="local/python:3.11-bookworm"
base_label="debootstrap-bookworm-python3-venv-ca-passwd-v1"
image="ponder:cpu-test"
container="ponder-docker-test-$$"
stop_timeout=30
health_timeout=900  # the engine starts in ~1 min alone; a busy 2-core machine is slower
api_key="docker-test-key-$RANDOM$RANDOM"

work="$(mktemp -d /tmp/ponder-docker-test.XXXXXX)"
started_dockerd=""
docker=""
t_start=$SECONDS

say() { echo "docker-test: $*"; }
elapsed() { echo $((SECONDS - $1)); }

cannot_run() {
  say "Docker cannot run here: $*" >&2
  if [ "${DOCKER_TEST_ALLOW_SKIP:-}" = 1 ]; then
    say "SKIPPED (nothing was built or tested; DOCKER_TEST_ALLOW_SKIP=1)"
    exit 0
  fi
  say "FAILED (set DOCKER_TEST_ALLOW_SKIP=1 to skip where Docker cannot run)" >&2
  exit 1
}

cleanup() {
  local status=$?
  set +e
  if [ -n "$docker" ]; then
    "$docker" rm -f "$container" > /dev/null 2>&1
    if [ "${DOCKER_TEST_KEEP_IMAGE:-}" != 1 ]; then
      "$docker" image rm -f "$image" > /dev/null 2>&1
    fi
  fi
  if [ -n "$started_dockerd" ]; then
    say "stopping the dockerd it started (pid $started_dockerd)"
    kill -TERM "$started_dockerd" 2> /dev/null
    for _ in $(seq 60); do kill -0 "$started_dockerd" 2> /dev/null || break; sleep 1; done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'say "FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# -------------------------------------------------------------- 1. packages
missing=()
dpkg -s docker.io > /dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap > /dev/null || missing+=(debootstrap)
command -v docker-compose > /dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get > /dev/null; then
    cannot_run "${missing[*]} missing, and no root apt-get to install them"
  fi
  say "installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" > "$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; cannot_run "apt-get install ${missing[*]} failed"; }
fi
# Debian's client: it builds with BuildKit by itself (a newer `docker` earlier
# on PATH may lack the buildx plugin).
docker="$(dpkg -L docker.io | grep -E 'bin/docker$' | head -1)"
dockerd="$(dpkg -L docker.io | grep -E 'bin/dockerd$' | head -1)"
[ -x "$docker" ] && [ -x "$dockerd" ] || cannot_run "docker.io is installed but its docker/dockerd are missing"
export DOCKER="$docker" DOCKER_BUILDKIT=1

# ------------------------------------------------------------------ 2. lint
VENV="$venv" scripts/docker-lint.sh

# ---------------------------------------------------------------- 3. daemon
if ! "$docker" info > /dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || cannot_run "no Docker daemon answers, and starting one needs root"
  say "starting dockerd (--bridge=none --iptables=false; log $work/dockerd.log)"
  setsid "$dockerd" --bridge=none --iptables=false > "$work/dockerd.log" 2>&1 < /dev/null &
  started_dockerd=$!
  for _ in $(seq 60); do
    "$docker" info > /dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2> /dev/null || break
    sleep 1
  done
  if ! "$docker" info > /dev/null 2>&1; then
    tail -20 "$work/dockerd.log" >&2
    started_dockerd=""
    cannot_run "dockerd did not start"
  fi
fi
say "daemon: $("$docker" version --format 'server {{.Server.Version}}, client {{.Client.Version}}')"

# ------------------------------------------------------------ 4. base image
if [ "$("$docker" image inspect -f '{{index .Config.Labels "ponder.base"}}' "$base_image" 2> /dev/null)" != "$base_label" ]; then
  rootfs="$cache/$base_label.tar"
  if [ ! -s "$rootfs" ]; then
    t=$SECONDS
    say "debootstrap bookworm into $rootfs (once)"
    mkdir -p "$cache"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
      bookworm "$work/rootfs" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
      || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -cf "$rootfs.tmp" . && mv "$rootfs.tmp" "$rootfs"
    rm -rf "$work/rootfs"
    say "debootstrap took $(elapsed $t) s"
  fi
  "$docker" import \
    --change "LABEL ponder.base=$base_label" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$rootfs" "$base_image" > /dev/null
  say "imported $base_image"
fi

# ------------------------------------------------------------ 5. CPU image
build_args=(--build-arg "BASE_IMAGE=$base_image")
# torch's CPU wheel: this machine's pip find-links, when it has the pinned
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
cert="${PIP_CERT:-$("$python" -m pip config get global.cert 2> /dev/null || true)}"
if [ -n "$cert" ] && [ -s "$cert" ]; then
  build_args+=(--secret "id=pip_cert,src=$cert")
fi

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
