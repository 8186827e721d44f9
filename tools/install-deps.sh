#!/usr/bin/env bash
# Installs what the build and the tests need on Debian 12: servers and peers from Debian's packages,
# JavaScript peers from npm (ONNX Runtime comes from NuGet with the build). Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  mosquitto mosquitto-clients        # MQTT interop peers
  postgresql                         # cluster storage
  chromium                           # dashboard tests (Playwright drives Debian's browser)
  python3-onnx python3-numpy         # model authoring
  libonnx-testdata                   # ONNX backend conformance data
  docker-compose python3-yaml        # static check of docker-compose.yml (the test parses its output)
  openssl                            # test certificates
  wrk                                # HTTP load generator for bench/CloudEdge.Bench.Http
  sqlite3                            # the edge outage test reads the agent's edge.db from outside
  qemu-user                          # the self-contained linux-arm64 agent runs under qemu-aarch64 (Platform tests)
  libc6:arm64 libssl3:arm64 libstdc++6:arm64   # what that agent loads besides the .NET runtime it carries (multiarch)
)
# The arm64 libraries come from Debian's arm64 archive: enable the architecture once (idempotent).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "install-deps: dpkg --add-architecture arm64"
  $sudo_cmd dpkg --add-architecture arm64
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Tests start private mosquitto and PostgreSQL instances on free ports; Debian's own services are not
# needed, so stop them if the package's install started them (by their pid files, never by name:
# a test's private instance must survive).
for service in mosquitto postgresql; do
  if command -v service >/dev/null 2>&1; then service "$service" stop >/dev/null 2>&1 || true; fi
done

# JavaScript peers for interop tests (MQTT.js), pinned in tools/node/package-lock.json.
if [ -f tools/node/package.json ]; then
  (cd tools/node && { [ -f package-lock.json ] && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error || npm install --ignore-scripts --no-audit --no-fund --loglevel=error; })
fi
