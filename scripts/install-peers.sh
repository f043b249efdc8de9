#!/usr/bin/env bash
# Install the third-party WebSocket peers that sockway's tests talk to:
#   - Python: websockets (interop peer), kosoku (Autobahn conformance runner),
#     signalrcore and pysignalr (SignalR clients of the hub tests) into a venv
#     at target/peers/venv, from tests/peers/requirements.txt;
#   - Node:   ws (interop peer), playwright-core (drives the browser tests of
#     the echo and chat pages), @microsoft/signalr and its MessagePack protocol
#     (the official SignalR client, for the hub tests) into
#     tests/peers/node_modules, from tests/peers/package-lock.json;
#   - Chromium (Debian package `chromium`, /usr/bin/chromium) for the browser
#     tests, through apt-get when it is missing;
#   - redis-server (Debian package `redis-server`) for the hub's scale-out
#     tests, which start their own instance on a free loopback port, through
#     apt-get when it is missing;
#   - openssl (Debian package `openssl`), which makes the gateway's throwaway
#     certificate for the Autobahn run through its TLS front, likewise.
#
# Idempotent and fast when nothing changed: each half writes a stamp file
# holding the hash of its pinned inputs and is skipped while that hash matches.
# Quiet on success apart from one line saying where things are.
#
# Usage: scripts/install-peers.sh        (FORCE=1 to reinstall anyway)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS_DIR="$ROOT/tests/peers"
VENV="$ROOT/target/peers/venv"
STAMPS="$ROOT/target/peers"

# Hash of the given files, so a change to any pin triggers a reinstall.
inputs_hash() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

# Succeeds when stamp file $1 exists and holds hash $2 (and FORCE is unset).
stamp_matches() {
  [[ -z "${FORCE:-}" && -f "$1" && "$(cat "$1")" == "$2" ]]
}

# Run a command, showing its output only if it fails (keeps success quiet).
quietly() {
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then
    echo "install-peers: command failed: $*" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

install_python() {
  local stamp="$STAMPS/python.stamp" hash
  # The interpreter version is part of the hash: a venv does not survive a
  # Python upgrade.
  hash="$( (python3 --version; inputs_hash "$PEERS_DIR/requirements.txt") | sha256sum | cut -d' ' -f1)"
  if stamp_matches "$stamp" "$hash" && [[ -x "$VENV/bin/python" ]]; then
    return 0
  fi
  rm -f "$stamp"
  # A fresh venv each time the pins change avoids stale packages lingering.
  rm -rf "$VENV"
  mkdir -p "$STAMPS"
  quietly python3 -m venv "$VENV"
  quietly "$VENV/bin/python" -m pip install --disable-pip-version-check \
    --no-input -r "$PEERS_DIR/requirements.txt"
  echo "$hash" >"$stamp"
}

install_node() {
  local stamp="$STAMPS/node.stamp" hash
  hash="$( (node --version; inputs_hash "$PEERS_DIR/package.json" "$PEERS_DIR/package-lock.json") | sha256sum | cut -d' ' -f1)"
  if stamp_matches "$stamp" "$hash" && [[ -d "$PEERS_DIR/node_modules/ws" ]] \
    && [[ -d "$PEERS_DIR/node_modules/playwright-core" ]] \
    && [[ -d "$PEERS_DIR/node_modules/@microsoft/signalr" ]] \
    && [[ -d "$PEERS_DIR/node_modules/@microsoft/signalr-protocol-msgpack" ]]; then
    return 0
  fi
  rm -f "$stamp"
  mkdir -p "$STAMPS"
  # npm ci installs exactly what the lockfile says (and wipes node_modules first).
  (cd "$PEERS_DIR" && quietly npm ci --no-audit --no-fund --loglevel=error)
  echo "$hash" >"$stamp"
}

# Debian package $2, which provides command $1: skipped when the command is already there;
# otherwise installed with apt-get (as root, or through sudo).
install_debian_package() {
  local command="$1" package="$2"
  if command -v "$command" >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-peers: $command is missing and apt-get is not available; install $package by hand" >&2
    return 1
  fi
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo=(sudo)
  fi
  quietly "${sudo[@]}" apt-get update
  quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$package"
}

install_python
install_node
install_debian_package chromium chromium
install_debian_package redis-server redis-server
install_debian_package openssl openssl
echo "peers: python=$VENV/bin/python kosoku=$VENV/bin/kosoku node_modules=$PEERS_DIR/node_modules chromium=$(command -v chromium) redis-server=$(command -v redis-server)"
