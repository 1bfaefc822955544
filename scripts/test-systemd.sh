#!/usr/bin/env bash
# The systemd test: a minimal Debian with systemd, made once with debootstrap
# from the machine's own Debian mirror and kept in DIR, booted under
# chrootrun until systemctl answers, then powered off and rebooted from
# inside (chrootrun exec NAME systemctl poweroff|reboot).
#   scripts/test-systemd.sh [DIR]              make DIR if needed, run the test
#   scripts/test-systemd.sh --root-only DIR    only make DIR
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

root_only=false
if [[ ${1:-} == --root-only ]]; then
	root_only=true
	shift
fi
dir=${1:-build/systemd/root}

# The suite of this machine when it is Debian, else bookworm.
suite=bookworm
if [[ -r /etc/os-release ]] && grep -q '^ID=debian' /etc/os-release; then
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
fi
stamp="$dir/.chrootrun-systemd-root"

if [[ ! -f $stamp || $(cat "$stamp") != "$suite" ]]; then
	if ! command -v debootstrap >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	# The mirror apt already uses: the only one some machines reach.
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -E '^[[:space:]]*(deb|URIs:)' | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
	mirror=${mirror:-http://deb.debian.org/debian}
	echo "test-systemd: debootstrap $suite from $mirror into $dir" >&2
	rm -rf "$dir.tmp"
	mkdir -p "$(dirname "$dir")"
	debootstrap --variant=minbase --include=systemd,systemd-sysv "$suite" "$dir.tmp" "$mirror" >"$dir.log" 2>&1 ||
		{ tail -n 20 "$dir.log" >&2; exit 1; }
	echo "$suite" >"$dir.tmp/.chrootrun-systemd-root"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
fi
$root_only && exit 0

CHROOTRUN_SYSTEMD_ROOT=$(realpath "$dir") exec go test -count=1 -run 'TestSystemd' -v ./cmds/chrootrun
