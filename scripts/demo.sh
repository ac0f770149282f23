#!/usr/bin/env bash
# The demo command (README): builds runagent, serves examples/hello on the
# embedded SQLite store, calls it over REST, a WebSocket stream and an SSE
# stream with a narrower API key it creates, lists the recorded
# invocations, then stops the server.
# Usage: ./scripts/demo.sh   (env: RUNAGENT_DEMO_PORT, default 8450)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
bin=bin/runagent data=${RUNAGENT_DEMO_DATA:-$PWD/.demo-data} id=6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b
echo "Building $bin…"
CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/runagent
addr=127.0.0.1:${RUNAGENT_DEMO_PORT:-8450}
sandbox=linux
if ! "$bin" doctor >/dev/null 2>&1; then
  echo "This host cannot run the linux sandbox ('$bin doctor' says why; it needs root,"
  echo "namespaces, cgroups and loop devices). The demo runs agents with --sandbox process:"
  echo "NO isolation, acceptable only for trusted code on a development machine."
  sandbox=process
fi
# The server's first owner key: generated here and handed over in a file,
# so the demo can use it (a server started without one prints its own).
mkdir -p "$data"
keyfile=$data/demo-owner.key
[ -s "$keyfile" ] || { (umask 077; "$bin" keys generate >"$keyfile"); }
export RUNAGENT_BOOTSTRAP_KEY_FILE=$keyfile
log=$(mktemp)
"$bin" serve examples/hello --addr "$addr" --data-dir "$data" --sandbox "$sandbox" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q 'serving on' "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
cat "$log"
export RUNAGENT_BASE_URL=http://$addr
echo
echo "\$ RUNAGENT_API_KEY=<owner key> runagent keys create --name demo --role admin"
if ! RUNAGENT_API_KEY=$(cat "$keyfile") "$bin" keys create --name demo --role admin >"$data/demo-admin.key"; then
  echo "The owner key in $keyfile does not match this data directory's; remove $data and run again."
  exit 1
fi
RUNAGENT_API_KEY=$(cat "$data/demo-admin.key")
export RUNAGENT_API_KEY
echo
echo "\$ runagent run --id $id --tag generate --message=hello"
"$bin" run --id "$id" --tag generate --message=hello
echo
echo "\$ runagent run-stream --id $id --tag generate_stream --message='streaming hello' --words=6"
"$bin" run-stream --id "$id" --tag generate_stream --message='streaming hello' --words=6
echo
echo "\$ runagent run-stream --sse --id $id --tag generate_stream --words=3"
"$bin" run-stream --sse --id "$id" --tag generate_stream --words=3
echo
echo "\$ runagent run --id $id --tag echo --n=2.5 --ok=true --name=demo"
"$bin" run --id "$id" --tag echo --n=2.5 --ok=true --name=demo
echo
echo "\$ runagent db invocations --limit 4"
"$bin" db invocations --limit 4 --data-dir "$data"
