#!/usr/bin/env bash
# Install the host packages ginit's build, demo and tests need, through apt
# (with sudo when not root). Does nothing when they are all there.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
have qemu-img || need+=(qemu-utils)
have mkfs.ext4 || need+=(e2fsprogs)
have debugfs || need+=(e2fsprogs)
have xz || need+=(xz-utils)
have curl || need+=(curl)
have dpkg-deb || need+=(dpkg)
have dnsmasq || need+=(dnsmasq-base)
have radvd || [ -x /usr/sbin/radvd ] || need+=(radvd)
have ip || need+=(iproute2)
[ -x /bin/busybox ] || need+=(busybox-static) # a shell and tools for the roots of the exec tests
# The other initramfs builders of make bench's peer table: the -core
# packages only, which neither conflict with each other nor hook the
# host's kernel updates.
[ -x /usr/sbin/depmod ] || need+=(kmod)
[ -x /usr/sbin/mkinitramfs ] || need+=(initramfs-tools-core)
have dracut || need+=(dracut-core)
[ -d /usr/lib/dracut/modules.d/35network-legacy ] || need+=(dracut-network)
[ -x /usr/sbin/mktirfs ] || need+=(tiny-initramfs-core)
have zstd || need+=(zstd)
# Some Debian installs keep sbin out of PATH for non-root users.
[ -x /usr/sbin/mkfs.ext4 ] && ! have mkfs.ext4 && need=("${need[@]/e2fsprogs}")
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
sudo=
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
