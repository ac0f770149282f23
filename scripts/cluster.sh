#!/usr/bin/env bash
# scripts/cluster.sh: runagent on several nodes, on this machine, for a
# newcomer. It starts a throwaway PostgreSQL (Debian's postgresql: initdb
# and postgres, as the postgres user when run as root) and a redis-server,
# both on loopback only, then three runagent nodes on loopback ports that
# share them, prints how to reach them, and runs until Ctrl-C.
#
#   scripts/cluster.sh          start, and stop everything on Ctrl-C
#   scripts/cluster.sh stop     stop a cluster started from another terminal
#
# Everything lives in one directory ($RUNAGENT_CLUSTER_DIR, default
# /tmp/runagent-cluster), removed again on stop: the databases, the logs,
# and the secrets (store and Redis URLs with their passwords, the master
# key, the first owner key), each in a 0600 file, never on a command line.
#
# Environment: RUNAGENT_BIN (the runagent binary; default: built from this
# checkout with go, else runagent on PATH), RUNAGENT_CLUSTER_PORTS (the
# three nodes' ports, default "8451 8452 8453"), RUNAGENT_CLUSTER_PG_PORT
# (default 55432), RUNAGENT_CLUSTER_REDIS_PORT (default 56379),
# RUNAGENT_SANDBOX (linux, the default, needs root here: see
# 'runagent doctor'; process runs agents WITHOUT isolation).
set -euo pipefail

dir=${RUNAGENT_CLUSTER_DIR:-${TMPDIR:-/tmp}/runagent-cluster}
read -r -a ports <<<"${RUNAGENT_CLUSTER_PORTS:-8451 8452 8453}"
pg_port=${RUNAGENT_CLUSTER_PG_PORT:-55432}
redis_port=${RUNAGENT_CLUSTER_REDIS_PORT:-56379}
pg_bin=/usr/lib/postgresql/15/bin
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# stop_all stops what the pid files in $dir name, nodes first (they
# drain their runs), then Redis, then PostgreSQL, and removes $dir.
stop_all() {
  [ -d "$dir" ] || return 0
  local f pid
  # The nodes first, all at once: they leave Redis and the database
  # cleanly only while both still answer.
  for f in "$dir"/node*.pid; do
    [ -f "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$dir"/node*.pid "$dir"/redis.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ "$(basename "$f")" = redis.pid ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$(basename "$f" .pid) (pid $pid) did not stop within 20s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

# as_pg runs a PostgreSQL program as the user that owns the cluster:
# postgres when we are root (PostgreSQL refuses to run as root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-}" = stop ]; then
  if [ -f "$dir/cluster.pid" ] && kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null; then
    # The starting script stops everything itself on TERM; wait for it.
    pid=$(cat "$dir/cluster.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  stop_all
  say "stopped"
  exit 0
elif [ $# -gt 0 ] && [ "$1" != start ]; then
  die "usage: scripts/cluster.sh [start|stop]"
fi

# Prerequisites, each with the Debian package that provides it.
missing=()
[ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/postgres" ] && [ -x "$pg_bin/psql" ] || missing+=("PostgreSQL 15 ($pg_bin): apt-get install postgresql")
command -v redis-server >/dev/null 2>&1 || missing+=("redis-server: apt-get install redis-server")
command -v curl >/dev/null 2>&1 || missing+=("curl: apt-get install curl")
command -v setsid >/dev/null 2>&1 || missing+=("setsid: apt-get install util-linux")
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || missing+=("the postgres user (PostgreSQL refuses to run as root): apt-get install postgresql")
  command -v runuser >/dev/null 2>&1 || missing+=("runuser: apt-get install util-linux")
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "missing prerequisites (or run scripts/deps.sh, which installs them):"
  for m in "${missing[@]}"; do say "  $m"; done
  exit 1
fi
[ ${#ports[@]} -eq 3 ] || die "RUNAGENT_CLUSTER_PORTS names ${#ports[@]} ports, want 3"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "${ports[@]}" "$pg_port" "$redis_port"; do
  port_free "$p" || die "port $p on 127.0.0.1 is in use: stop what listens there (a cluster still running? scripts/cluster.sh stop), or choose others with RUNAGENT_CLUSTER_PORTS, RUNAGENT_CLUSTER_PG_PORT, RUNAGENT_CLUSTER_REDIS_PORT"
done
if [ -e "$dir" ]; then
  if [ -f "$dir/cluster.pid" ] && kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null; then
    die "a cluster is running from $dir (pid $(cat "$dir/cluster.pid")): scripts/cluster.sh stop"
  fi
  say "removing what a stopped cluster left in $dir"
  stop_all
fi

bin=${RUNAGENT_BIN:-}
if [ -z "$bin" ]; then
  if command -v go >/dev/null 2>&1 && [ -f "$repo/go.mod" ]; then
    mkdir -p "$dir"
    say "building runagent from $repo"
    (cd "$repo" && go build -o "$dir/runagent" ./cmd/runagent) || die "go build failed (see above)"
    bin=$dir/runagent
  elif command -v runagent >/dev/null 2>&1; then
    bin=$(command -v runagent)
  else
    die "no runagent binary: install Go (https://go.dev/dl) to build it from this checkout, or name one with RUNAGENT_BIN"
  fi
fi
[ -x "$bin" ] || die "RUNAGENT_BIN=$bin is not an executable file"

umask 077
mkdir -p "$dir"
chmod 0711 "$dir" # the postgres user must reach its own directory below
echo $$ >"$dir/cluster.pid"
trap 'say "stopping…"; stop_all; say "stopped"; exit 0' INT TERM
trap 'status=$?; if [ $status -ne 0 ]; then say "start-up failed: stopping what started"; stop_all; fi' EXIT

secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' ; }

# PostgreSQL: a cluster of its own in $dir/pg, password authentication
# over TCP on loopback, its socket in $dir/pg too (not /var/run).
say "starting PostgreSQL on 127.0.0.1:$pg_port"
mkdir -p "$dir/pg"
pg_password=$(secret)
printf '%s\n' "$pg_password" >"$dir/pg/pwfile"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir/pg"; fi
pg_super=postgres # the superuser, as whom peer authentication lets us in
[ "$(id -u)" -eq 0 ] || pg_super=$(id -un)
as_pg "$pg_bin/initdb" -D "$dir/pg/data" -U "$pg_super" --pwfile="$dir/pg/pwfile" \
  --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C >"$dir/pg/initdb.log" 2>&1 ||
  { cat "$dir/pg/initdb.log" >&2; die "initdb failed (above)"; }
rm -f "$dir/pg/pwfile"
setsid bash -c "$(declare -f as_pg); as_pg '$pg_bin/pg_ctl' -D '$dir/pg/data' -l '$dir/pg/postgres.log' -w -t 60 \
  -o \"-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1\" start" >/dev/null ||
  { cat "$dir/pg/postgres.log" >&2; die "PostgreSQL did not start (its log is above)"; }
as_pg "$pg_bin/psql" -q -h "$dir/pg" -p "$pg_port" -U "$pg_super" -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE runagent LOGIN PASSWORD '$pg_password'" -c "CREATE DATABASE runagent OWNER runagent" >/dev/null ||
  die "creating the runagent database failed (PostgreSQL's log: $dir/pg/postgres.log)"
printf 'postgres://runagent:%s@127.0.0.1:%s/runagent?sslmode=disable\n' "$pg_password" "$pg_port" >"$dir/store-url"

# Redis: loopback only, a password, nothing saved to disk. The password
# is in its configuration file, not its command line.
say "starting Redis on 127.0.0.1:$redis_port"
redis_password=$(secret)
cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $redis_port
protected-mode yes
requirepass $redis_password
save ""
appendonly no
dir $dir
logfile $dir/redis.log
EOF
setsid redis-server "$dir/redis.conf" &
echo $! >"$dir/redis.pid"
printf 'redis://:%s@127.0.0.1:%s/0\n' "$redis_password" "$redis_port" >"$dir/redis-url"

# One master key for all nodes; the first owner key, stored by the first
# node on the empty database.
head -c 32 /dev/urandom | base64 >"$dir/master.key"
"$bin" keys generate >"$dir/owner-key"

node_env=(RUNAGENT_STORE_URL= RUNAGENT_REDIS_URL= RUNAGENT_DATA_DIR= RUNAGENT_ADDR=
  RUNAGENT_STORE_URL_FILE="$dir/store-url" RUNAGENT_REDIS_URL_FILE="$dir/redis-url"
  RUNAGENT_MASTER_KEY_FILE="$dir/master.key" RUNAGENT_BOOTSTRAP_KEY_FILE="$dir/owner-key"
  RUNAGENT_LOCAL_REGISTRY=off
  # One persistent-memory directory for the three nodes, as a shared file
  # system would be for nodes on several machines.
  RUNAGENT_MEMORY_DIR="$dir/memory")

start_node() { # n port
  # The nodes' own files get the usual modes (agents' code must be
  # readable by the sandbox's unnamed uid); only the secrets above are
  # private.
  umask 022
  mkdir -p "$dir/node$1"
  env "${node_env[@]}" setsid "$bin" serve --addr "127.0.0.1:$2" --data-dir "$dir/node$1" >"$dir/node$1.log" 2>&1 &
  echo $! >"$dir/node$1.pid"
}

wait_node() { # n port
  local pid
  pid=$(cat "$dir/node$1.pid")
  for _ in $(seq 1 600); do
    if curl -sf -o /dev/null "http://127.0.0.1:$2/api/v1/health"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$dir/node$1.log" >&2
      die "node $1 exited during start-up (its log is above; 'runagent doctor' checks this host)"
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/node$1.log" >&2
  die "node $1 did not answer health within 60s (its log is above)"
}

# The first node migrates the empty database and stores the owner key;
# the other two start once it has.
say "starting node 1 on 127.0.0.1:${ports[0]}"
start_node 1 "${ports[0]}"
wait_node 1 "${ports[0]}"
say "starting nodes 2 and 3 on 127.0.0.1:${ports[1]} and 127.0.0.1:${ports[2]}"
start_node 2 "${ports[1]}"
start_node 3 "${ports[2]}"
wait_node 2 "${ports[1]}"
wait_node 3 "${ports[2]}"

agent=6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b # examples/hello's agent_id
cat <<EOF

runagent cluster ready: three nodes sharing one PostgreSQL and one Redis, on loopback.
  node 1   http://127.0.0.1:${ports[0]}     log $dir/node1.log
  node 2   http://127.0.0.1:${ports[1]}     log $dir/node2.log
  node 3   http://127.0.0.1:${ports[2]}     log $dir/node3.log
  PostgreSQL 127.0.0.1:$pg_port (URL with password in $dir/store-url)
  Redis      127.0.0.1:$redis_port (URL with password in $dir/redis-url)

Try it (runagent is $bin):
  export RUNAGENT_API_KEY=\$(cat $dir/owner-key)
  runagent deploy $repo/examples/hello --server http://127.0.0.1:${ports[0]}
  runagent run --id $agent --tag echo --message hi --server http://127.0.0.1:${ports[1]}
  runagent audit verify --store-file $dir/store-url --master-key-file $dir/master.key
  runagent doctor --store-file $dir/store-url --redis-url-file $dir/redis-url

Stop: Ctrl-C here, or scripts/cluster.sh stop (everything in $dir is deleted).
EOF

# Run until told to stop; say so if a node dies meanwhile.
while true; do
  for n in 1 2 3; do
    if [ -f "$dir/node$n.pid" ] && ! kill -0 "$(cat "$dir/node$n.pid")" 2>/dev/null; then
      say "node $n exited: see $dir/node$n.log"
      rm -f "$dir/node$n.pid"
    fi
  done
  sleep 1 &
  wait $! || true
done
