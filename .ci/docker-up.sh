#!/usr/bin/env bash
# Make sure a Docker engine is running on this machine (idempotent).
#
# - If `docker info` already works: nothing to do.
# - Otherwise install Debian's docker.io and debootstrap (plus a few tools the
#   tests use) and start dockerd in the background, logging to /tmp/dockerd.log.
#
# The engine runs without iptables rules and without the default bridge:
# containers must use host networking (`docker run --network host`,
# `docker build --network host`) to reach the package registries.
#
# Environment:
#   PREBAKE_DOCKER_STORAGE_DRIVER  storage driver(s) to try, in order (default: "overlay2 vfs")
#   PREBAKE_DOCKERD_LOG            dockerd log file (default: /tmp/dockerd.log)
set -euo pipefail

log() { echo "[docker-up] $*" >&2; }

if docker info >/dev/null 2>&1; then
    log "docker engine already running"
    exit 0
fi

DOCKERD_LOG="${PREBAKE_DOCKERD_LOG:-/tmp/dockerd.log}"

# --- packages -----------------------------------------------------------------
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in docker.io debootstrap zstd curl zip unzip tar; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        log "need root to install: ${missing[*]}"
        exit 1
    fi
    log "installing: ${missing[*]}"
    # Keep package scripts from starting services themselves (there is no init
    # system here); we start dockerd below with our own flags.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# --- dockerd ------------------------------------------------------------------
DOCKERD="$(command -v dockerd || true)"
if [ -z "$DOCKERD" ]; then
    log "dockerd not found after installing docker.io"
    exit 1
fi

# The debian package puts runc/containerd in /usr/sbin or /usr/bin; make sure
# dockerd finds them even under a minimal PATH.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# A dockerd killed without cleanup (e.g. at the end of a previous session)
# leaves a pid file behind; dockerd refuses to start if that pid is alive,
# which can happen by pid reuse.
clear_stale_pidfile() {
    local pidfile=/var/run/docker.pid pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ]; then
        return 0
    fi
    rm -f "$pidfile"
}

DOCKERD_PID=""
start_dockerd() {  # $1 = storage driver
    clear_stale_pidfile
    log "starting dockerd (storage driver $1), log: $DOCKERD_LOG"
    # --iptables=false --ip-masq=false: do not touch the host firewall.
    # --bridge=none: no docker0 bridge; containers use --network host.
    nohup "$DOCKERD" \
        --storage-driver="$1" \
        --iptables=false \
        --ip-masq=false \
        --bridge=none \
        >>"$DOCKERD_LOG" 2>&1 </dev/null &
    DOCKERD_PID=$!
    disown "$DOCKERD_PID" 2>/dev/null || true
}

wait_for_docker() {  # $1 = timeout in seconds
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        if docker info >/dev/null 2>&1; then return 0; fi
        # dockerd died: no point in waiting any longer
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then return 1; fi
        sleep 0.5
    done
    return 1
}

stop_dockerd() {
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$DOCKERD_PID" 2>/dev/null || return 0
        sleep 0.25
    done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
}

if [ -n "${PREBAKE_DOCKER_STORAGE_DRIVER:-}" ]; then
    read -r -a drivers <<<"$PREBAKE_DOCKER_STORAGE_DRIVER"
else
    drivers=(overlay2 vfs)
fi

start_time=$SECONDS
for driver in "${drivers[@]}"; do
    start_dockerd "$driver"
    if wait_for_docker 60; then
        log "docker engine up (storage driver $driver) after $((SECONDS - start_time)) s"
        exit 0
    fi
    log "dockerd did not come up with storage driver $driver"
    stop_dockerd
done

log "giving up; last lines of $DOCKERD_LOG:"
tail -n 40 "$DOCKERD_LOG" >&2 || true
exit 1
