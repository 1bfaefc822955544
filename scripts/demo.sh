#!/usr/bin/env bash
# The demo: build the example HTTP server as an OCI image (no Docker), run
# it as a VM in the background with ginitctl, as `docker run -d -p` would
# run it, curl it from the host through the published port, then stop it
# the way `docker stop` does and show how it ended.
# Needs build/kernel and build/minimal.cpio (`make demo` makes them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
port=${DEMO_PORT:-18080}
out=build/demo
state=$out/state
rm -rf "$out/root" "$out/hello-oci"
mkdir -p "$out/root/app" "$out/root/etc"

echo "demo: building the example workload and ginitctl"
CGO_ENABLED=0 go build -trimpath -o "$out/root/app/hello-server" ./examples/hello-server
go build -o "$out/ginitctl" ./cmds/ginitctl
: > "$out/root/etc/resolv.conf"
ctl() { "$out/ginitctl" "$1" --state "$state" "${@:2}"; }

echo "demo: packing it as an OCI image ($out/hello-oci)"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} go run ./examples/mkoci --owner 0:0 \
	--entrypoint /app/hello-server --env GREETING=hello-from-the-image --expose 8080/tcp \
	--stop-signal SIGTERM --name hello "$out/root" "$out/hello-oci"

ctl rm -f demo >/dev/null 2>&1 || true
echo "demo: ginitctl run -d --name demo -p 127.0.0.1:$port:8080 oci:$out/hello-oci:hello"
ctl run -d --name demo -p "127.0.0.1:$port:8080" "oci:$out/hello-oci:hello"
trap 'ctl rm -f demo >/dev/null 2>&1 || true' EXIT
ctl ps

answer=
for _ in $(seq 1 240); do
	if answer=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null); then break; fi
	if ! ctl ps | grep -q '^demo .* running'; then
		echo "demo: the VM stopped before the server answered; its console:" >&2
		ctl logs demo >&2
		exit 1
	fi
	sleep 0.5
done
if [ -z "$answer" ]; then
	echo "demo: no answer on port $port; the console:" >&2
	ctl logs demo >&2
	exit 1
fi
ctl logs demo | grep '^ginit: boot timing' || true
echo "demo: curl http://127.0.0.1:$port/ answered:"
echo "    $answer"

echo "demo: ginitctl stop demo (the power button: the image's StopSignal, then the status)"
ctl stop demo
ctl logs demo | grep '^\(hello-server: stopping\|ginit: \(received\|entrypoint exited\|poweroff\)\)' || true
ctl ps -a
