# What the Docker scripts share (sourced by docker-test.sh and
# docker-gpu-build.sh; not run by itself): Debian's Docker packages, a daemon
# without a bridge network, the local Python base image that stands in for
# the public one, and pip's CA bundle as a build secret.
#
# The sourcing script sets $script_name (its messages' prefix), $work (a
# scratch folder) and $python (the venv's python). After docker_ready:
#   $docker, $dockerd   Debian's client and daemon (the client builds with
#                       BuildKit by itself; a newer `docker` earlier on PATH
#                       may lack the buildx plugin)
#   $started_dockerd    the pid of the daemon started here, or empty
#
# Environment:
#   PONDER_DOCKER_CACHE     where the debootstrap root filesystem is cached
#                           (/var/cache/ponder-docker)

#   DOCKER_TEST_ALLOW_SKIP  1: where Docker cannot run at all, print SKIPPED
#                           and exit 0; otherwise that fails (exit 1), and a
#                           skipped run never prints PASSED

say() { echo "$script_name: $*"; }
elapsed() { echo $((SECONDS - $1)); }

cannot_run() {
  say "Docker cannot run here: $*" >&2
  if [ "${DOCKER_TEST_ALLOW_SKIP:-}" = 1 ]; then
    say "SKIPPED (nothing was run; DOCKER_TEST_ALLOW_SKIP=1)"
    exit 0
  fi
  say "FAILED (set DOCKER_TEST_ALLOW_SKIP=1 to skip where Docker cannot run)" >&2
  exit 1
}

docker_cache="${PONDER_DOCKER_CACHE:-/var/cache/ponder-docker}"
base_image="local/python:3.11-bookworm"
base_label="debootstrap-bookworm-python3-venv-ca-passwd-v1"
docker=""
dockerd=""
started_dockerd=""

# docker.io, debootstrap and docker-compose (apt) when missing; then the
# daemon, started (--bridge=none --iptables=false) when none answers.
docker_ready() {
  local missing=()
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
  docker="$(dpkg -L docker.io | grep -E 'bin/docker$' | head -1)"
  dockerd="$(dpkg -L docker.io | grep -E 'bin/dockerd$' | head -1)"
  [ -x "$docker" ] && [ -x "$dockerd" ] || cannot_run "docker.io is installed but its docker/dockerd are missing"
  export DOCKER="$docker" DOCKER_BUILDKIT=1
}

docker_daemon() {
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
}

# The daemon this script started, stopped (for the EXIT trap).
docker_daemon_stop() {
  if [ -n "$started_dockerd" ]; then
    say "stopping the dockerd it started (pid $started_dockerd)"
    kill -TERM "$started_dockerd" 2> /dev/null
    for _ in $(seq 60); do kill -0 "$started_dockerd" 2> /dev/null || break; sleep 1; done
  fi
}

# $base_image: Debian bookworm's Python 3.11 from debootstrap (no registry is
# needed), imported once; the root filesystem is cached in $docker_cache.
docker_base_image() {
  if [ "$("$docker" image inspect -f '{{index .Config.Labels "ponder.base"}}' "$base_image" 2> /dev/null)" = "$base_label" ]; then
    return
  fi
  local rootfs="$docker_cache/$base_label.tar" t
  if [ ! -s "$rootfs" ]; then
    t=$SECONDS
    say "debootstrap bookworm into $rootfs (once)"
    mkdir -p "$docker_cache"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
      bookworm "$work/rootfs" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
      || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -cf "$rootfs.tmp" . && mv "$rootfs.tmp" "$rootfs"
    rm -rf "$work/rootfs"
    say "debootstrap took $(elapsed "$t") s"
  fi
  "$docker" import \
    --change "LABEL ponder.base=$base_label" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$rootfs" "$base_image" > /dev/null
  say "imported $base_image"
}

# Prints the build arguments that hand pip's CA bundle to a build as a
# secret, when this machine's pip has one.
docker_pip_cert_args() {
  local cert="${PIP_CERT:-$("$python" -m pip config get global.cert 2> /dev/null || true)}"
  if [ -n "$cert" ] && [ -s "$cert" ]; then
    printf '%s\n' --secret "id=pip_cert,src=$cert"
  fi
}
