#!/usr/bin/env bash
# Installs what the registry and its tests need on a fresh Debian machine, and nothing twice:
#   npm packages (incl. the pinned Node 24 and bun) when node_modules is missing or stale,
#   Debian's chromium, tmux, prometheus (for promtool, the metrics test's real parser), postgresql
#   (initdb/pg_ctl/postgres for the tests' private clusters, test/harness/postgres.ts) and nginx
#   (the reverse-proxy test, templates/nginx.conf) when the tests need them and they are missing.
# Usage: bash scripts/setup.sh [--with-test-tools]
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.install-stamp
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  # `bun --bun run start` puts Bun on PATH as `node`; npm ci then runs on Bun and fails half-way
  if node -e 'process.exit(process.versions.bun ? 0 : 1)' >/dev/null 2>&1; then
    echo "setup: \`node\` here is Bun ($(command -v node)), and node_modules is missing or stale: npm ci needs a real Node." >&2
    echo "setup: run \`npm ci\` (or \`bun run start:bun\`, without --bun) once with Node 22+, then start again (docs/operations.md, \"Bun\")." >&2
    exit 1
  fi
  echo "setup: installing npm packages (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

if [ "${1:-}" = "--with-test-tools" ]; then
  missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # HAProxy: the real load balancer of the cluster tests (templates/haproxy.cfg, docs/cluster.md)
  [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  # Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
