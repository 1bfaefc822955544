#!/usr/bin/env bash
# The original ginit demo, for real and without Docker: nginx from Debian's
# packages, installed by debootstrap into a directory, packed as an OCI
# image, turned into a root disk by oci2disk, booted with ginit in QEMU and
# answered on a forwarded port. Then Ctrl-Alt-Del stops it cleanly.
#
#   examples/nginx/run.sh            (from the repository; needs root or sudo
#                                     for debootstrap, the rest runs as you)
#   NGINX_PORT=18090 DEBIAN_MIRROR=http://deb.debian.org/debian
#
# The rootfs is cached in build/nginx/rootfs; delete it to rebuild. Needs
# build/kernel and build/minimal.cpio (make image), debootstrap, qemu, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
port=${NGINX_PORT:-18090}
monport=${NGINX_MONITOR_PORT:-18091}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
out=build/nginx
root=$out/rootfs
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo

if [ ! -e "$root/.ginit-debootstrap-done" ]; then
	echo "nginx: debootstrap bookworm (minbase + nginx-light) into $root from $mirror"
	$sudo rm -rf "$root"
	mkdir -p "$out"
	$sudo debootstrap --variant=minbase --include=nginx-light bookworm "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || {
		echo "nginx: debootstrap failed; log in $out/debootstrap.log" >&2
		tail -5 "$out/debootstrap.log" >&2
		exit 1
	}
	# What the image needs beyond the packages: a page of its own, logs
	# on the console, no apt caches.
	echo "<h1>hello from nginx in a ginit VM</h1>" | $sudo tee "$root/var/www/html/index.html" >/dev/null
	$sudo ln -sf /dev/stdout "$root/var/log/nginx/access.log"
	$sudo ln -sf /dev/stderr "$root/var/log/nginx/error.log"
	$sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	$sudo touch "$root/.ginit-debootstrap-done"
fi

echo "nginx: packing $root as an OCI image ($out/nginx-oci)"
rm -rf "$out/nginx-oci"
# Reading the rootfs needs root too (some files are root-only, e.g. /etc/shadow).
$sudo env SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} "$(command -v go)" run ./examples/mkoci \
	--entrypoint '["/usr/sbin/nginx","-g","daemon off;"]' --expose 80/tcp --stop-signal SIGQUIT \
	--name nginx "$root" "$out/nginx-oci"
[ -z "$sudo" ] || $sudo chown -R "$(id -u):$(id -g)" "$out/nginx-oci"

echo "nginx: making the root disk with oci2disk (as $(id -un))"
go run ./cmds/oci2disk "oci:$out/nginx-oci:nginx" "$out/nginx.img"

echo "nginx: booting QEMU (console in $out/console.log)"
scripts/run-qemu.sh --disk "$out/nginx.img" --fwd "$port:80" --monitor "tcp:127.0.0.1:$monport" \
	--timeout 300 >"$out/console.log" 2>&1 &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT
answer=
for _ in $(seq 1 240); do
	if answer=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null); then break; fi
	if ! kill -0 $qemu 2>/dev/null; then
		echo "nginx: the VM stopped before nginx answered; console:" >&2
		cat "$out/console.log" >&2
		exit 1
	fi
	sleep 0.5
done
if [ -z "$answer" ]; then
	echo "nginx: no answer on port $port; console:" >&2
	cat "$out/console.log" >&2
	exit 1
fi
echo "nginx: curl http://127.0.0.1:$port/ answered:"
echo "    $answer"

echo "nginx: pressing Ctrl-Alt-Del on the VM's keyboard"
exec 3<>"/dev/tcp/127.0.0.1/$monport"
echo "sendkey ctrl-alt-delete" >&3
set +e
wait $qemu
rc=$?
set -e
exec 3>&-
trap - EXIT
grep '^ginit: \(received\|entrypoint exited\|poweroff\)' "$out/console.log" || true
echo "nginx: the VM powered off with status $rc"
if e2fsck -fn "$out/nginx.img" >/dev/null 2>&1; then
	echo "nginx: e2fsck -fn finds the root disk clean"
fi
exit "$rc"
