#!/usr/bin/env bash
# Installs what meridian's tests and demo need when it is missing: redis-server, redis-cli,
# redis-benchmark and kill(1) from Debian's packages, promtool (Debian's prometheus package) to
# validate the /metrics exposition, chromium (run headless) to load the admin dashboard, redis-py
# from PyPI, ioredis and node-redis from npm (node >= 20 and npm must be there). Needs root (or
# sudo) only when something is missing.
set -euo pipefail
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
missing=()
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The lab signals its processes with kill(1) from procps.
[[ -x /usr/bin/kill || -x /bin/kill ]] || missing+=(procps)
if ((${#missing[@]})); then
  echo "installing (missing: ${missing[*]})" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools procps >/dev/null
  # The package may start a system instance on 6379; meridian's tests never use it.
fi
command -v redis-server >/dev/null
# promtool checks the admin endpoint's Prometheus exposition (tests/admin_http.rs).
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Only promtool is wanted: where systemd runs, do not leave a Prometheus server running.
  if [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
command -v promtool >/dev/null
# Headless chromium loads the admin dashboard in tests/dashboard.rs.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package chromium)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null
# Real client libraries the compatibility tests drive meridian with: redis-py from PyPI, and
# ioredis and node-redis from npm at the versions tests/clients/package-lock.json pins.
if ! python3 -c 'import redis' 2>/dev/null; then
  echo "installing redis-py from PyPI" >&2
  python3 -m pip install -q --disable-pip-version-check 'redis==8.0.0'
fi
python3 -c 'import redis' >/dev/null
clients="$(dirname "$0")/../tests/clients"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: node and npm are missing; the client-library tests need node >= 20 with npm" >&2
  exit 1
fi
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "install-deps: node $(node --version) is too old; the client-library tests need node >= 20" >&2
  exit 1
fi
# npm keeps its own copy of the lock file in node_modules; an older one means the pins changed.
if [[ ! -d "$clients/node_modules" || "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ]]; then
  echo "installing node client libraries (npm ci in tests/clients)" >&2
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
