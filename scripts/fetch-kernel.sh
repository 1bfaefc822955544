#!/usr/bin/env bash
# Fetch Debian's cloud kernel and unpack it for building and booting images.
#
#   scripts/fetch-kernel.sh [DEST]        (DEST defaults to build/kernel)
#
# Resolves the metapackage (KERNEL_PACKAGE, default linux-image-cloud-amd64) to
# the concrete kernel package it depends on today, downloads that .deb into
# DEST and leaves:
#   DEST/vmlinuz                 the kernel
#   DEST/lib/modules/<release>/  its modules, modules.builtin, modules.order
#   DEST/version                 <release>, e.g. 6.1.0-56-cloud-amd64
# Runs again are no-ops while DEST already holds the current package.
# Needs apt-get, apt-cache and dpkg-deb; uses sudo for `apt-get update` when
# not root, and runs that only when apt knows nothing of the metapackage.
set -euo pipefail

dest=${1:-build/kernel}
meta=${KERNEL_PACKAGE:-linux-image-cloud-amd64}
sudo=
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi

die() { echo "fetch-kernel: $*" >&2; exit 1; }
say() { echo "fetch-kernel: $*"; }

# The first linux-image-* package the metapackage depends on.
resolve() {
	apt-cache depends "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}

pkg=$(resolve)
if [ -z "$pkg" ]; then
	say "apt knows no $meta yet: running apt-get update"
	$sudo apt-get update -qq
	pkg=$(resolve)
fi
[ -n "$pkg" ] || die "apt-cache depends $meta names no linux-image package"
debver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ { print $2; exit }')
[ -n "$debver" ] || die "apt-cache show $pkg gives no version"

if [ -s "$dest/version" ] && [ -s "$dest/vmlinuz" ] && [ -f "$dest/package" ] &&
	[ "$(cat "$dest/package")" = "$pkg $debver" ] &&
	[ -d "$dest/lib/modules/$(cat "$dest/version")" ]; then
	say "$pkg $debver already in $dest ($(cat "$dest/version"))"
	exit 0
fi

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fetch-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT

# apt-get download needs no root. As root, apt drops to its _apt user to
# download, which must be able to write the directory, or apt warns and
# downloads unsandboxed.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$work"
fi
say "downloading $pkg $debver (for $meta)"
(cd "$work" && apt-get download -q "$pkg=$debver")
deb=$(find "$work" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
[ -n "$deb" ] || die "apt-get download left no ${pkg}_*.deb in $work"

mkdir "$work/x"
dpkg-deb -x "$deb" "$work/x"
moddir=
for d in "$work/x/lib/modules" "$work/x/usr/lib/modules"; do
	if [ -d "$d" ]; then moddir=$d; break; fi
done
[ -n "$moddir" ] || die "$(basename "$deb") holds no lib/modules"
release=$(ls "$moddir")
[ "$(echo "$release" | wc -l)" -eq 1 ] || die "$(basename "$deb") holds several module trees: $release"
vmlinuz="$work/x/boot/vmlinuz-$release"
[ -s "$vmlinuz" ] || die "$(basename "$deb") holds no boot/vmlinuz-$release"

# Replace what was there: an older release must not linger beside the new
# one (the Makefile takes the only lib/modules/* it finds).
rm -rf "$dest/lib" "$dest/vmlinuz" "$dest/version" "$dest/package"
find "$dest" -maxdepth 1 -name 'linux-image-*.deb' -delete
mkdir -p "$dest/lib/modules"
mv "$moddir/$release" "$dest/lib/modules/$release"
mv "$vmlinuz" "$dest/vmlinuz"
mv "$deb" "$dest/"
chmod 644 "$dest/vmlinuz" "$dest/$(basename "$deb")"
echo "$pkg $debver" >"$dest/package"
echo "$release" >"$dest/version"
say "kernel $release in $dest ($(du -sh "$dest/lib/modules/$release" | cut -f1) of modules)"
