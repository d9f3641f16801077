#!/usr/bin/env bash
# Build a base image the tests run builds on: a minimal Debian (bookworm by
# default) with python3, venv and pip, made with debootstrap and `docker import`
# (no image can be pulled from a registry here).
#
# Usage: bash .ci/base-image.sh [TAG [SUITE]]
#   default TAG: prebake-test-base:bookworm, default SUITE: bookworm
#   e.g. bash .ci/base-image.sh prebake-test-base:trixie trixie   (Python 3.13)
#
# - If TAG already exists in the engine (made from the same recipe and host CA
#   bundle, see the labels prebake.rootfs and prebake.host-ca): nothing to do.
# - The debootstrapped rootfs is cached as a tarball per suite under
#   ${PREBAKE_CACHE:-$HOME/.cache/prebake-ci}, so a later run on the same machine
#   (e.g. after the engine's data was wiped) only imports it.
# - The Debian mirror is the one the host's apt uses for SUITE, or else the one
#   it uses for the host's own release (a bookworm host has no trixie lines),
#   or else deb.debian.org; the security archive is found the same way.
# - Needs a running engine (.ci/docker-up.sh) and root (debootstrap).
set -euo pipefail

TAG="${1:-prebake-test-base:bookworm}"
SUITE="${2:-bookworm}"
case "$SUITE" in
    *[!a-z]* | "") echo "[base-image] SUITE must be a Debian codename (bookworm, trixie, ...), not '$SUITE'" >&2; exit 2 ;;
esac
INCLUDE="python3,python3-venv,python3-pip,ca-certificates,tar"
CACHE_DIR="${PREBAKE_CACHE:-$HOME/.cache/prebake-ci}"

log() { echo "[base-image] $*" >&2; }

# HTTPS from this machine goes through an intercepting proxy whose CA only the
# host trusts: the image gets the host's CA bundle (added at import time, not
# cached, and the image is re-made when the host's bundle changes).
HOST_CA=/etc/ssl/certs/ca-certificates.crt
CA_HASH="$(sha256sum "$HOST_CA" 2>/dev/null | cut -c1-12 || true)"
CA_HASH="${CA_HASH:-none}"

# --- which Debian mirror does apt here use? ----------------------------------
# First "URIs:" (deb822 .sources) or "deb URL SUITE" (one-line format) whose
# suite is plain $SUITE; the security archive is found the same way.
find_mirror() {  # $1 = suite to look for (bookworm / bookworm-security)
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas are separated by blank lines
        awk -v suite="$1" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uri = ""; ok = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { split($i, a, /[ \t]+/); uri = a[2] }
                    if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1 }
                }
                if (ok && uri != "") { print uri; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$1" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++; if ($(i+1) == suite) { print $i; exit } }' "$f"
    done
}
HOST_SUITE="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || HOST_SUITE=""
mirror_for() {  # $1 = suffix ("" or "-security"): the host's mirror for $SUITE$1, else for $HOST_SUITE$1
    local m
    m="$(find_mirror "$SUITE$1" | head -n 1)"
    if [ -z "$m" ] && [ -n "$HOST_SUITE" ]; then m="$(find_mirror "$HOST_SUITE$1" | head -n 1)"; fi
    echo "$m"
}
MIRROR="$(mirror_for "")"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="$(mirror_for -security)"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# The cache file name changes whenever what goes into the rootfs changes.
KEY="$(printf '%s\n' v1 "$SUITE" "$INCLUDE" "$MIRROR" "$SECURITY_MIRROR" | sha256sum | cut -c1-12)"
TARBALL="$CACHE_DIR/rootfs-$SUITE-$KEY.tar.zst"

OLD_ID=""
if docker image inspect "$TAG" >/dev/null 2>&1; then
    have="$(docker image inspect -f '{{index .Config.Labels "prebake.host-ca"}}/{{index .Config.Labels "prebake.rootfs"}}' "$TAG" 2>/dev/null || true)"
    if [ "$have" = "$CA_HASH/$KEY" ]; then
        log "image $TAG already exists"
        exit 0
    fi
    log "image $TAG is out of date (host CA bundle or rootfs recipe changed); re-making it"
    OLD_ID="$(docker image inspect -f '{{.Id}}' "$TAG")"
fi

mkdir -p "$CACHE_DIR"
# One build at a time per cache directory.
exec 9>"$CACHE_DIR/.lock"
flock 9

if [ ! -s "$TARBALL" ]; then
    for tool in debootstrap zstd; do
        command -v "$tool" >/dev/null || { log "$tool missing: run .ci/docker-up.sh first"; exit 1; }
    done
    log "debootstrap $SUITE from $MIRROR (this takes a few minutes)"
    WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/prebake-rootfs.XXXXXX")"
    cleanup() {
        # debootstrap mounts proc/sys inside the target; never rm through a mount
        awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
        rm -rf --one-file-system "$WORK"
    }
    trap cleanup EXIT
    ROOTFS="$WORK/rootfs"

    debootstrap --variant=minbase --include="$INCLUDE" \
        "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        log "debootstrap failed; last lines of its log:"
        tail -n 30 "$WORK/debootstrap.log" >&2
        tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2 2>/dev/null || true
        exit 1
    }

    # Same sources as the host, so `apt-get install` in a container works.
    cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
    # Slim down: package lists, caches, docs.
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
        "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/archives/partial/* \
        "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
        "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* \
        "$ROOTFS"/root/.cache
    # docker provides these at run time
    : >"$ROOTFS/etc/resolv.conf"
    : >"$ROOTFS/etc/hostname"

    tar -C "$ROOTFS" --numeric-owner -c . | zstd -q -T0 -o "$TARBALL.tmp"
    mv "$TARBALL.tmp" "$TARBALL"
    log "cached rootfs: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

log "importing $TARBALL as $TAG"
raw_id="$(zstd -dc "$TARBALL" | docker import -)"
cid="$(docker create "$raw_id" true)"
if [ "$CA_HASH" != none ]; then
    docker cp -L "$HOST_CA" "$cid:/etc/ssl/certs/ca-certificates.crt"
    # keep the extra CAs across an update-ca-certificates in the container
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        docker cp -L /usr/local/share/ca-certificates/. "$cid:/usr/local/share/ca-certificates/"
    fi
fi
ca=/etc/ssl/certs/ca-certificates.crt
docker commit \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV SSL_CERT_FILE=$ca REQUESTS_CA_BUNDLE=$ca CURL_CA_BUNDLE=$ca PIP_CERT=$ca" \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL prebake.host-ca=$CA_HASH prebake.rootfs=$KEY" \
    "$cid" "$TAG" >/dev/null
docker rm "$cid" >/dev/null
# drop the image this one replaces (fails harmlessly if a container uses it)
if [ -n "$OLD_ID" ]; then docker rmi "$OLD_ID" >/dev/null 2>&1 || true; fi

# Smoke test: the image starts and has python3.
out="$(docker run --rm --network host "$TAG" python3 -c 'print(1)')"
if [ "$out" != 1 ]; then
    log "smoke test failed: python3 in $TAG printed '$out'"
    exit 1
fi
log "image $TAG ready ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
