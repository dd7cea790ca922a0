#!/usr/bin/env bash
# Start the services the tests need (PostgreSQL, Redis, NATS JetStream) if they are not running.
# Uses the Debian packages; installs them first when missing. Safe to run repeatedly.
set -euo pipefail

up() { (echo > "/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }
wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 0.5; done
  echo "ERROR: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}
need_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "${APT_UPDATED:-0}" = 1 ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

if ! up 5432; then
  need_pkg pg_ctlcluster postgresql
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432
fi
if ! up 6379; then
  need_pkg redis-server redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379
fi
if ! up 4222; then
  need_pkg nats-server nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for NATS 4222
fi
need_pkg promtool prometheus  # promtool checks the exported SLO rules (tests/unit/slo)
echo "services: PostgreSQL, Redis and NATS are up on 127.0.0.1"
