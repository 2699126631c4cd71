#!/usr/bin/env bash
# Make sure the local PostgreSQL and MariaDB servers the tests need are up, and the OS packages the
# throwaway-server tests use are installed (Debian). Idempotent; does nothing where all is in place.
set -uo pipefail
need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v mariadbd >/dev/null || need+=(mariadb-server)
# serving tests: psql's client, pgJDBC and node-postgres for the SQL endpoint, a real browser for dashboards
command -v psql >/dev/null || need+=(postgresql-client)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v java >/dev/null || need+=(default-jre-headless)
command -v chromium >/dev/null || need+=(chromium)
# stream sources: a private JetStream server per test session and for the demo's stream part
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 1; done
fi
# node-postgres for the SQL endpoint test, from npm into tests/clients/node (git-ignored node_modules)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if command -v npm >/dev/null && [ ! -d "$ROOT/tests/clients/node/node_modules/pg" ]; then
  (cd "$ROOT/tests/clients/node" && npm install --no-audit --no-fund --silent >/dev/null 2>&1) || true
fi
exit 0
