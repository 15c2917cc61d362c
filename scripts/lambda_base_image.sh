#!/usr/bin/env bash
# Build an OFFLINE stand-in for the AWS Lambda python3.13 base image, so that
# `sam local invoke --skip-pull-image` works on machines that cannot reach public.ecr.aws.
#
#   scripts/lambda_base_image.sh           # build once; no-op when the image already exists
#   scripts/lambda_base_image.sh --force   # rebuild (also drops SAM's derived "rapid" images)
#
# Recipe (everything comes from the Debian apt mirror and PyPI, both reachable here):
#   debootstrap bookworm minbase + CPython's shared libs  ->  copy the host's pyenv CPython 3.13
#   (same path, it has an absolute RUNPATH) + /var/lang/bin symlinks  ->  pip install awslambdaric
#   into /var/runtime and boto3 into site-packages  ->  /var/runtime/bootstrap, /lambda-entrypoint.sh
#   ->  `tar | docker import` with the real image's ENV/WORKDIR/ENTRYPOINT.
#
# What SAM needs from the base image (samcli/local/docker/lambda_image.py, lambda_container.py):
#   * the tag public.ecr.aws/lambda/python:3.13-<arch> (python3.13 is multi-arch, so the arch suffix);
#   * /bin/sh, mv, chmod: SAM builds "FROM <base>; ADD aws-lambda-rie-<arch> /var/rapid/; RUN mv ... &&
#     chmod +x ..." (+ ADD layers to /opt) and tags it public.ecr.aws/lambda/python:3.13-rapid-<arch>
#     (samcli/lambda-python:3.13-<arch>-<hash> when the function has layers);
#   * the container runs entrypoint /var/rapid/aws-lambda-rie (SAM's copy, not ours), which execs
#     /var/task/bootstrap, /opt/bootstrap or /var/runtime/bootstrap with _HANDLER set.
#
# Env overrides: LAMBDA_BASE_PYTHON_HOME (default /root/.pyenv/versions/3.13.0), LAMBDA_BASE_MIRROR,
#   LAMBDA_BASE_BOTO3 (default boto3==1.44.8, as in the dev venv), LAMBDA_BASE_RIC (awslambdaric==4.2.2),
#   LAMBDA_BASE_BUILD_DIR (default <repo>/.build/lambda-base).
# Exit codes: 0 ok, 1 build failed (see log), 2 usage, 3 no container engine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/scripts/$(basename "${BASH_SOURCE[0]}")"
BUILD_DIR="${LAMBDA_BASE_BUILD_DIR:-$ROOT/.build/lambda-base}"
LOG="$BUILD_DIR/build.log"
PY_HOME="${LAMBDA_BASE_PYTHON_HOME:-/root/.pyenv/versions/3.13.0}"
PY_MINOR=3.13
BOTO3_SPEC="${LAMBDA_BASE_BOTO3:-boto3==1.44.8}"
RIC_SPEC="${LAMBDA_BASE_RIC:-awslambdaric==4.2.2}"
SUITE=bookworm
REPO=public.ecr.aws/lambda/python
LABEL_KEY=wa.lambda-base.key
# CPython's extension modules + awslambdaric's C++ extension need these at run time.
INCLUDE_PKGS=ca-certificates,tzdata,libssl3,zlib1g,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libtinfo6,libuuid1,libexpat1,libstdc++6,libgcc-s1

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h | --help) sed -n '2,30p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--force]" >&2; exit 2 ;;
    esac
done

say() { printf 'lambda_base_image.sh: %s\n' "$*"; }
die() { say "ERROR: $*" >&2; [[ -f $LOG ]] && { echo "--- last lines of $LOG:" >&2; tail -n 15 "$LOG" >&2; }; exit 1; }
# Run a noisy step with its output in the log; show the log tail if it fails.
run() { printf '\n+ %s\n' "$*" >>"$LOG"; "$@" >>"$LOG" 2>&1 || die "step failed: $*"; }

[[ $EUID -eq 0 ]] || { say "must run as root (debootstrap, docker)" >&2; exit 1; }

# SAM's arch names; we can only build for the host arch because we copy the host's CPython.
case "$(uname -m)" in
    x86_64 | amd64) ARCH=x86_64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) say "unsupported host architecture $(uname -m)" >&2; exit 1 ;;
esac
PRIMARY="$REPO:$PY_MINOR-$ARCH"
# :3.13 is the un-suffixed name (what `docker pull public.ecr.aws/lambda/python:3.13` gives).
TAGS=("$PRIMARY" "$REPO:$PY_MINOR")

[[ -x $PY_HOME/bin/python$PY_MINOR ]] || { say "no CPython $PY_MINOR at $PY_HOME (set LAMBDA_BASE_PYTHON_HOME)" >&2; exit 1; }
PY_FULL="$("$PY_HOME/bin/python$PY_MINOR" -c 'import platform; print(platform.python_version())')"

# Cache key: rebuild automatically when this recipe, the Python or the pins change.
KEY="$({ cat "$SELF"; echo "$PY_HOME $PY_FULL $ARCH $BOTO3_SPEC $RIC_SPEC"; } | sha256sum | cut -c1-16)"

# A container engine is required; start ours if none is answering.
if ! docker info >/dev/null 2>&1; then
    "$ROOT/scripts/dockerd.sh" start || exit 3
fi

# Serialise concurrent runs (shared build dir); a waiter then finds the image built and exits.
mkdir -p "$BUILD_DIR"
exec 9>"$BUILD_DIR/.lock"
flock 9

image_label() { docker image inspect -f "{{index .Config.Labels \"$LABEL_KEY\"}}" "$1" 2>/dev/null; }
tag_all() { local t; for t in "${TAGS[@]:1}"; do docker tag "$PRIMARY" "$t"; done; }

if [[ $FORCE -eq 0 ]] && docker image inspect "$PRIMARY" >/dev/null 2>&1; then
    have="$(image_label "$PRIMARY" || true)"
    if [[ -z $have || $have == "<no value>" ]]; then
        # Not ours (e.g. the real AWS image pulled on a connected machine): never overwrite it silently.
        say "$PRIMARY exists and was not built by this script; keeping it (use --force to replace)"
        exit 0
    elif [[ $have == "$KEY" ]]; then
        tag_all
        say "$PRIMARY is up to date (key $KEY); nothing to do"
        exit 0
    fi
    say "$PRIMARY was built from an older recipe ($have != $KEY); rebuilding"
fi

: >"$LOG"
START=$SECONDS
say "building $PRIMARY (CPython $PY_FULL, $BOTO3_SPEC, $RIC_SPEC); log: $LOG"

# --- 1. Debian minbase rootfs, cached separately (it only depends on the mirror and package list) ---
mirror_from_apt() {
    # The first configured URI serving "$SUITE main" (deb822 *.sources, then one-line *.list).
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        uri="$(awk -v suite="$SUITE" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; ok = 0; enabled = 1
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris = u[1] }
                    if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1 }
                    if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
                }
                if (ok && enabled && uris != "") { print uris; exit }
            }' "$f")"
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # Drop an optional "[arch=... signed-by=...]" block, then match "deb URI SUITE ...".
        uri="$(awk -v suite="$SUITE" '{ sub(/\[[^]]*\]/, "") } $1 == "deb" && $3 == suite { print $2; exit }' "$f")"
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    echo http://deb.debian.org/debian
}
MIRROR="${LAMBDA_BASE_MIRROR:-$(mirror_from_apt)}"

# debootstrap fetches with wget, which ignores apt.conf; carry over an apt HTTP proxy if one is set.
if [[ -z ${http_proxy:-} ]]; then
    apt_proxy="$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)"
    [[ -n $apt_proxy && $apt_proxy != DIRECT ]] && export http_proxy="$apt_proxy"
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap via apt"
    run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
fi

BASE_DIR="$BUILD_DIR/debootstrap-$SUITE"
BASE_STAMP="$SUITE minbase $MIRROR $INCLUDE_PKGS"
if [[ ! -f $BASE_DIR/.wa-stamp || "$(cat "$BASE_DIR/.wa-stamp")" != "$BASE_STAMP" ]]; then
    say "debootstrap $SUITE from $MIRROR"
    rm -rf "$BASE_DIR" "$BASE_DIR.tmp"
    run debootstrap --variant=minbase --include="$INCLUDE_PKGS" "$SUITE" "$BASE_DIR.tmp" "$MIRROR"
    # Trim what a Lambda runtime never uses (package cache, docs); keep dpkg state for debugging.
    rm -rf "$BASE_DIR.tmp"/var/cache/apt/archives/*.deb "$BASE_DIR.tmp"/var/lib/apt/lists/* \
        "$BASE_DIR.tmp"/usr/share/doc/* "$BASE_DIR.tmp"/usr/share/man/* "$BASE_DIR.tmp"/usr/share/info/*
    printf '%s' "$BASE_STAMP" >"$BASE_DIR.tmp/.wa-stamp"
    mv "$BASE_DIR.tmp" "$BASE_DIR"
fi

# --- 2. Assemble the image rootfs from a fresh copy of the cached base ---
RFS="$BUILD_DIR/rootfs"
rm -rf "$RFS"
run cp -a "$BASE_DIR" "$RFS"
rm -f "$RFS/.wa-stamp"
# Device nodes from debootstrap are useless (docker mounts /dev) and need mknod on import.
find "$RFS/dev" -mindepth 1 -delete

# CPython at the same absolute path (RUNPATH and sysconfig point there). Leave out the test suite,
# IDLE/Tk, and the host sandbox's certifi hook (.pth), which does not belong in a Lambda image.
mkdir -p "$RFS$PY_HOME"
run tar -C "$PY_HOME" \
    --exclude="./lib/python$PY_MINOR/test" --exclude="./lib/python$PY_MINOR/idlelib" \
    --exclude="./lib/python$PY_MINOR/tkinter" --exclude="./lib/python$PY_MINOR/turtledemo" \
    --exclude="./lib/python$PY_MINOR/site-packages/_sandboxing_*" --exclude="_tkinter.*.so" \
    -cf "$BUILD_DIR/python.tar" .
run tar -C "$RFS$PY_HOME" -xf "$BUILD_DIR/python.tar"
rm -f "$BUILD_DIR/python.tar"
# Make the path traversable for non-root container users (SAM passes --user when not root).
d="$PY_HOME"
while [[ $d != / ]]; do chmod a+rx "$RFS$d"; d="$(dirname "$d")"; done

# The real image's layout: /var/lang/bin/python3.13, /var/lang/lib/python3.13/site-packages.
mkdir -p "$RFS/var/lang/bin" "$RFS/var/runtime" "$RFS/var/task" "$RFS/opt" "$RFS/usr/local/bin"
for n in "python$PY_MINOR" python3 python; do ln -sfn "$PY_HOME/bin/python$PY_MINOR" "$RFS/var/lang/bin/$n"; done
for n in pip pip3 "pip$PY_MINOR"; do [[ -e $PY_HOME/bin/$n ]] && ln -sfn "$PY_HOME/bin/$n" "$RFS/var/lang/bin/$n"; done
ln -sfn "$PY_HOME/lib" "$RFS/var/lang/lib"
ln -sfn "$PY_HOME/include" "$RFS/var/lang/include"
chmod 1777 "$RFS/tmp"

# --- 3. Python packages, installed with the host interpreter (identical version/ABI) ---
PIP=("$PY_HOME/bin/python$PY_MINOR" -m pip install --quiet --disable-pip-version-check
    --root-user-action=ignore --no-warn-script-location --only-binary=:all:)
run "${PIP[@]}" --target "$RFS/var/runtime" "$RIC_SPEC"
run "${PIP[@]}" --target "$RFS$PY_HOME/lib/python$PY_MINOR/site-packages" "$BOTO3_SPEC"
rm -rf "$RFS$PY_HOME/lib/python$PY_MINOR/site-packages/bin" "$RFS/var/runtime/bin"

# --- 4. Runtime bootstrap + entrypoint, modelled on the real image ---
cat >"$RFS/var/runtime/bootstrap" <<EOF
#!/bin/bash
# Stand-in for AWS's python$PY_MINOR runtime bootstrap (written by scripts/lambda_base_image.sh).
# The RIE (SAM's /var/rapid/aws-lambda-rie) execs this with _HANDLER and AWS_LAMBDA_RUNTIME_API set.
export AWS_EXECUTION_ENV=AWS_Lambda_python$PY_MINOR
if [ -z "\$AWS_LAMBDA_EXEC_WRAPPER" ]; then
  exec /var/lang/bin/python$PY_MINOR /var/runtime/bootstrap.py
fi
wrapper="\$AWS_LAMBDA_EXEC_WRAPPER"
[ -f "\$wrapper" ] || { echo "\$wrapper: does not exist"; exit 127; }
[ -x "\$wrapper" ] || { echo "\$wrapper: is not an executable"; exit 126; }
exec -- "\$wrapper" /var/lang/bin/python$PY_MINOR /var/runtime/bootstrap.py
EOF
cat >"$RFS/var/runtime/bootstrap.py" <<EOF
"""Stand-in for AWS's python$PY_MINOR /var/runtime/bootstrap.py (scripts/lambda_base_image.sh)."""
import os
import site
import sys

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
# Drop this script's own directory and recreate Lambda's order: code, layers, site-packages, runtime.
if sys.path and os.path.abspath(sys.path[0] or ".") == _RUNTIME_DIR:
    del sys.path[0]
sys.path[:0] = [
    os.environ.get("LAMBDA_TASK_ROOT", "/var/task"),
    "/opt/python/lib/python$PY_MINOR/site-packages",
    "/opt/python",
    *site.getsitepackages(),
    _RUNTIME_DIR,
]

from awslambdaric.__main__ import main  # noqa: E402  (needs the path above)

handler = os.environ.get("_HANDLER") or os.environ.get("AWS_LAMBDA_FUNCTION_HANDLER") or sys.argv[1:2]
if isinstance(handler, list):
    handler = handler[0] if handler else ""
main([sys.argv[0], handler])
EOF
cat >"$RFS/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
# Same contract as the real image's entrypoint: `docker run <image> app.handler`.
# (sam local invoke does not use it: SAM sets /var/rapid/aws-lambda-rie as the entrypoint.)
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie $RUNTIME_ENTRYPOINT
else
  exec $RUNTIME_ENTRYPOINT
fi
EOF
chmod 755 "$RFS/var/runtime/bootstrap" "$RFS/lambda-entrypoint.sh"
# The real image ships the RIE at /usr/local/bin for plain `docker run`; reuse the SAM CLI's copy if present.
rie="$(find "$ROOT"/.venv-sam/lib/python*/site-packages/samcli/local/rapid -name "aws-lambda-rie-$ARCH" 2>/dev/null | head -n 1 || true)"
if [[ -n $rie ]]; then install -m 755 "$rie" "$RFS/usr/local/bin/aws-lambda-rie"; fi

# --- 5. Smoke test inside the rootfs before importing (catches missing shared libraries) ---
run chroot "$RFS" /usr/bin/env -i PATH=/var/lang/bin:/usr/bin:/bin LANG=C.UTF-8 \
    /var/lang/bin/python$PY_MINOR -c "
import sys; sys.path.append('/var/runtime')
import ssl, sqlite3, ctypes, bz2, lzma, zlib, uuid, decimal, hashlib, json, readline, zoneinfo, curses
import boto3, awslambdaric.bootstrap, runtime_client
print(sys.version.split()[0], sys.prefix, ssl.OPENSSL_VERSION, 'boto3', boto3.__version__)"
missing="$(find "$RFS$PY_HOME" "$RFS/var/runtime" -name '*.so*' -type f -print0 |
    sed -z "s|^$RFS||" | xargs -0 -r chroot "$RFS" /usr/bin/ldd 2>/dev/null | grep 'not found' | sort -u || true)"
[[ -z $missing ]] || die "shared libraries missing in rootfs: $missing"

# --- 6. Import as an image with the real image's config ---
docker image rm "$PRIMARY" >/dev/null 2>&1 || true
tar -C "$RFS" --numeric-owner -cf - . 2>>"$LOG" | docker import \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV TZ=:/etc/localtime" \
    --change "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin" \
    --change "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib" \
    --change "ENV LAMBDA_TASK_ROOT=/var/task" \
    --change "ENV LAMBDA_RUNTIME_DIR=/var/runtime" \
    --change "WORKDIR /var/task" \
    --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
    --change "LABEL $LABEL_KEY=$KEY" \
    --message "offline stand-in for $PRIMARY (scripts/lambda_base_image.sh)" \
    - "$PRIMARY" >>"$LOG" 2>&1 || die "docker import failed"
tag_all

# SAM keeps its derived images (base + RIE [+ layers]) and would keep using the old base: drop them.
stale="$(docker images --format '{{.Repository}}:{{.Tag}}' |
    grep -E "^($REPO:$PY_MINOR-rapid-|samcli/lambda-python:$PY_MINOR-)" || true)"
if [[ -n $stale ]]; then
    # shellcheck disable=SC2086  # one image name per word
    docker image rm -f $stale >>"$LOG" 2>&1 || true
fi
rm -rf "$RFS"

size="$(docker image inspect -f '{{.Size}}' "$PRIMARY" | awk '{printf "%d MB", $1 / 1e6}')"
say "built ${TAGS[*]} ($size, key $KEY) in $((SECONDS - START))s"
