#!/usr/bin/env bash
# The demo: build the example HTTP server as an OCI image (no Docker), turn
# the image into a root disk with oci2disk, boot it with ginit in QEMU, curl
# it from the host through a forwarded port, then stop the VM the way a
# person would (Ctrl-Alt-Del) and show that it shut down cleanly.
# Needs build/kernel and build/minimal.cpio (`make demo` makes them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
port=${DEMO_PORT:-18080}
monport=${DEMO_MONITOR_PORT:-18081}
out=build/demo
rm -rf "$out/root" "$out/hello-oci"
mkdir -p "$out/root/app" "$out/root/etc"

echo "demo: building the example workload"
CGO_ENABLED=0 go build -trimpath -o "$out/root/app/hello-server" ./examples/hello-server
: > "$out/root/etc/resolv.conf"

echo "demo: packing it as an OCI image ($out/hello-oci)"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} go run ./examples/mkoci --owner 0:0 \
	--entrypoint /app/hello-server --env GREETING=hello-from-the-image --expose 8080/tcp \
	--stop-signal SIGTERM --name hello "$out/root" "$out/hello-oci"

echo "demo: making the root disk from the image with oci2disk"
go run ./cmds/oci2disk "oci:$out/hello-oci:hello" "$out/hello.img"

echo "demo: booting QEMU (console in $out/console.log)"
scripts/run-qemu.sh --disk "$out/hello.img" --fwd "$port:8080" --monitor "tcp:127.0.0.1:$monport" \
	--timeout 300 >"$out/console.log" 2>&1 &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT

answer=
for _ in $(seq 1 240); do
	if answer=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null); then break; fi
	if ! kill -0 $qemu 2>/dev/null; then
		echo "demo: the VM stopped before the server answered; console:" >&2
		cat "$out/console.log" >&2
		exit 1
	fi
	sleep 0.5
done
if [ -z "$answer" ]; then
	echo "demo: no answer on port $port; console:" >&2
	cat "$out/console.log" >&2
	exit 1
fi
grep '^ginit: boot timing' "$out/console.log" || true
echo "demo: curl http://127.0.0.1:$port/ answered:"
echo "    $answer"

echo "demo: pressing Ctrl-Alt-Del on the VM's keyboard"
exec 3<>"/dev/tcp/127.0.0.1/$monport"
echo "sendkey ctrl-alt-delete" >&3
set +e
wait $qemu
rc=$?
set -e
exec 3>&-
trap - EXIT
grep '^ginit: \(received\|entrypoint exited\|poweroff\)' "$out/console.log" || true
echo "demo: the VM powered off with status $rc"
if command -v e2fsck >/dev/null && e2fsck -fn "$out/hello.img" >/dev/null 2>&1; then
	echo "demo: e2fsck -fn finds the root disk clean"
fi
exit "$rc"
