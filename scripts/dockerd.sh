#!/usr/bin/env bash
# Start/stop a local Docker engine so `sam local invoke` can run Lambda containers
# on dev/CI machines that have no init system (no systemd, so no `service docker start`).
#
#   scripts/dockerd.sh start      # install docker.io if needed, start dockerd, wait for `docker info`
#   scripts/dockerd.sh stop       # stop the dockerd *this script* started (pid file), nothing else
#   scripts/dockerd.sh status     # exit 0 if `docker info` works
#   scripts/dockerd.sh bridge-ip  # print the docker0 IPv4 address (how containers reach host servers)
#
# Exit codes: 0 ok, 2 usage, 3 no container engine can run here (not root, no cgroups, dockerd dies...).
#
# Env: DOCKERD_STATE_DIR (default /tmp/wa-dockerd: dockerd is one per machine, not per checkout),
#      DOCKERD_START_TIMEOUT seconds (default 60).
set -euo pipefail

STATE_DIR="${DOCKERD_STATE_DIR:-/tmp/wa-dockerd}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
TIMEOUT="${DOCKERD_START_TIMEOUT:-60}"

say() { printf 'dockerd.sh: %s\n' "$*"; }
die3() { say "$*" >&2; exit 3; }

# Run as root directly, or via passwordless sudo; dockerd itself needs root.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 126
    fi
}

docker_ok() { docker info >/dev/null 2>&1; }

# pid from our pid file, only if that process is still a dockerd (guards against pid reuse).
our_pid() {
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid="$(cat "$PID_FILE")"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    # argv[0] must be dockerd itself (not e.g. this script, whose name also contains "dockerd").
    [[ "$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1 | xargs -r basename)" == dockerd ]] || return 1
    printf '%s\n' "$pid"
}

ensure_installed() {
    if command -v dockerd >/dev/null 2>&1 || [[ -x /usr/sbin/dockerd ]]; then
        return 0
    fi
    say "dockerd not found; installing docker.io via apt (log: $STATE_DIR/apt.log)"
    # policy-rc.d in containers blocks the package's service start; we start dockerd ourselves below.
    if ! as_root env DEBIAN_FRONTEND=noninteractive bash -c \
        'apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io iptables' \
        >"$STATE_DIR/apt.log" 2>&1; then
        die3 "no container engine: could not install docker.io (see $STATE_DIR/apt.log)"
    fi
    command -v docker >/dev/null 2>&1 || die3 "no container engine: docker client missing after install"
}

# Launch dockerd in the background with the given extra flags; 0 once `docker info` works.
# dockerd writes its own pid to $PID_FILE (--pidfile), so `stop` targets exactly that process.
launch() {
    local bg i
    : >"$LOG_FILE"
    local cmd=(setsid "$(command -v dockerd || echo /usr/sbin/dockerd)" --pidfile "$PID_FILE" "$@")
    [[ $EUID -eq 0 ]] || cmd=(sudo -n "${cmd[@]}")
    # A plain background command (no function/subshell) is exec'd directly, so no bash lingers.
    # setsid: own session, so the caller's Ctrl-C / job kill does not take dockerd down.
    # 9>&-: dockerd must not inherit the start lock, or the next `start` would wait forever.
    "${cmd[@]}" >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
    bg=$!
    for ((i = 0; i < TIMEOUT * 2; i++)); do
        docker_ok && return 0
        kill -0 "$bg" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

cmd_start() {
    if docker_ok; then
        say "docker engine already running ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return 0
    fi
    mkdir -p "$STATE_DIR"
    # Two concurrent `start`s must not both launch a dockerd (the loser would kill the winner's).
    exec 9>"$STATE_DIR/start.lock"
    flock 9
    if docker_ok; then say "docker engine ready"; return 0; fi
    ensure_installed
    if [[ $EUID -ne 0 ]] && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
        if [[ -S /var/run/docker.sock ]]; then
            die3 "no container engine: /var/run/docker.sock exists but uid $EUID cannot use it (add to group docker or run as root)"
        fi
        die3 "no container engine: dockerd is not running and starting it needs root (no passwordless sudo)"
    fi
    if pid="$(our_pid)"; then
        # Our dockerd exists but is not answering (still starting or wedged): give it the timeout once.
        say "waiting for dockerd pid $pid started earlier"
        local i
        for ((i = 0; i < TIMEOUT * 2; i++)); do docker_ok && { say "docker engine ready"; return 0; }; sleep 0.5; done
        die3 "no container engine: dockerd pid $pid not answering after ${TIMEOUT}s (log: $LOG_FILE)"
    fi
    say "starting dockerd (log: $LOG_FILE)"
    if launch; then
        say "docker engine ready ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return 0
    fi
    # Nested containers often lack a usable iptables/nf_tables; dockerd can still run containers
    # (docker-proxy publishes ports, the bridge still reaches the host) without touching iptables.
    if grep -qiE 'iptables|nf_tables|xtables' "$LOG_FILE"; then
        stop_pid quiet || true
        cp "$LOG_FILE" "$LOG_FILE.iptables-attempt"
        say "dockerd failed on iptables; retrying with --iptables=false"
        if launch --iptables=false --ip-masq=false; then
            say "docker engine ready without iptables ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
            return 0
        fi
    fi
    stop_pid quiet || true
    rm -f "$PID_FILE"
    tail -n 5 "$LOG_FILE" >&2 || true
    die3 "no container engine: dockerd failed to start within ${TIMEOUT}s (permissions/cgroups? log: $LOG_FILE)"
}

# Stop the dockerd recorded in our pid file (TERM, then KILL after 20s).
stop_pid() {
    local pid i
    pid="$(our_pid)" || { [[ ${1:-} == quiet ]] || say "no dockerd started by this script is running"; rm -f "$PID_FILE"; return 0; }
    as_root kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        as_root kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    [[ ${1:-} == quiet ]] || say "stopped dockerd pid $pid"
}

cmd_bridge_ip() {
    local ip=""
    if command -v ip >/dev/null 2>&1; then
        ip="$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
    fi
    if [[ -z $ip ]] && docker_ok; then
        ip="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)"
    fi
    [[ -n $ip ]] || { say "no docker0 bridge address (is dockerd running? try: $0 start)" >&2; exit 3; }
    printf '%s\n' "$ip"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) stop_pid ;;
    status) if docker_ok; then say "running"; else say "not running"; exit 1; fi ;;
    bridge-ip) cmd_bridge_ip ;;
    *) echo "usage: $0 {start|stop|status|bridge-ip}" >&2; exit 2 ;;
esac
