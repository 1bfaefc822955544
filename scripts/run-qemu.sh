#!/usr/bin/env bash
# Boot a kernel, a ginit initramfs and a root disk in QEMU, with the serial
# console on stdio. Exits with the workload's exit status, carried out of the
# VM by QEMU's isa-debug-exit device (ginit writes it there on QEMU).
#
#   scripts/run-qemu.sh [flags] [-- extra QEMU args]
#     --kernel PATH     kernel image          (default build/kernel/vmlinuz)
#     --initrd PATH     initramfs             (default build/minimal.cpio)
#     --disk PATH       root disk, virtio     (default none)
#     --append TEXT     extra kernel command line, e.g. 'entrypoint="/bin/app -v"'
#     --fwd H:G         forward host 127.0.0.1:H to guest port G (repeatable)
#     --net none        no network card
#     --mem MB          memory (default 256)
#     --smp N           CPUs (default 1)
#     --monitor ADDR    QEMU monitor at unix:PATH or tcp:127.0.0.1:PORT (sendkey, system_powerdown)
#     --timeout SECS    kill QEMU after this long (default 0: never)
#     --machine TYPE    QEMU machine: microvm, pc, q35 (default microvm where
#                       QEMU offers it, the initrd carries virtio_mmio and,
#                       under TCG, the host's TSC rate is known; else pc)
#
# Exit status: the workload's status (0-127 exactly; above 127 only its low
# 7 bits survive QEMU's own exit code, so read the console line
# "ginit: entrypoint exited with status N" for those); 124 on --timeout;
# QEMU's own status when it ended without ginit's debug exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kernel=$here/build/kernel/vmlinuz
initrd=$here/build/minimal.cpio
disk=
append=
net=user
mem=256
smp=1
monitor=
timeout=0
machine=
fwds=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--initrd) initrd=$2; shift 2 ;;
	--disk) disk=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--fwd) fwds+=("$2"); shift 2 ;;
	--net) net=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--monitor) monitor=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--machine) machine=$2; shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "run-qemu.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
	esac
done
for f in "$kernel" "$initrd" ${disk:+"$disk"}; do
	[ -r "$f" ] || { echo "run-qemu.sh: cannot read $f" >&2; exit 2; }
done

# KVM only where it really works; these machines run TCG.
accel=(-accel tcg -cpu max)
if [ -w /dev/kvm ] && [ "${GINIT_KVM:-0}" = 1 ]; then accel=(-accel kvm -cpu host); fi

# microvm's kernel, under TCG, has no timer to measure the TSC against:
# it takes the host's rate (TCG's TSC is the host's), which the host's
# BogoMIPS give (kHz / 500). internal/qemu's Machine has the same rules.
tsc_khz=$(awk -F: '/^bogomips/ { printf "%d", $2 * 500 + 0.5; exit }' /proc/cpuinfo)
machines=$(qemu-system-x86_64 -M help | awk 'NR > 1 { print $1 }')
if [ -z "$machine" ]; then
	machine=pc
	if grep -qx microvm <<<"$machines" && grep -qa 'virtio_mmio\.ko' "$initrd" &&
		{ [ "${accel[1]}" = kvm ] || [ "${tsc_khz:-0}" -gt 0 ]; }; then
		machine=microvm
	fi
elif ! grep -qx -- "$machine" <<<"$machines"; then
	echo "run-qemu.sh: --machine $machine: QEMU has no such machine type (qemu-system-x86_64 -M help lists them)" >&2
	exit 2
fi
if [ "$machine" = microvm ]; then
	# ACPI describes the virtio-mmio devices to Debian's modular
	# virtio_mmio and gives the power button; virtio 1.0, not legacy.
	mach=(-M microvm,acpi=on -global virtio-mmio.force-legacy=false)
	virtio=device
	# A reboot by triple fault: ACPI's reset, the kernel's first choice,
	# now and then leaves a TCG vCPU hung in the firmware.
	append="reboot=t $append"
	if [ "${accel[1]}" = tcg ]; then
		[ "${tsc_khz:-0}" -gt 0 ] || { echo "run-qemu.sh: --machine microvm under TCG needs the host's TSC rate (bogomips in /proc/cpuinfo); use --machine pc" >&2; exit 2; }
		append="tsc_early_khz=$tsc_khz $append"
	fi
else
	mach=(-M "$machine")
	virtio=pci
	# pc: PCI interrupts routed by the BIOS's tables; ACPI's routing took
	# about 165 ms of each virtio device's probe under TCG. Without it the
	# kernel gives PCI devices no MSI domain, and each virtio driver's MSI-X
	# setup failed with a kernel WARNING: pci=nomsi takes INTx at once.
	[ "$machine" = pc ] && append="acpi=noirq pci=nomsi $append"
fi

args=(qemu-system-x86_64 "${mach[@]}" "${accel[@]}" -m "$mem" -smp "$smp"
	-display none -no-reboot
	-device isa-debug-exit,iobase=0xf4,iosize=0x01
	-kernel "$kernel" -initrd "$initrd"
	-append "console=ttyS0 panic=-1 $append")
if [ -n "$monitor" ]; then
	args+=(-serial stdio -monitor "$monitor,server,nowait")
else
	args+=(-serial mon:stdio) # Ctrl-A X quits
fi
if [ -n "$disk" ]; then args+=(-drive "file=$disk,if=none,id=root,format=raw" -device "virtio-blk-$virtio,drive=root"); fi
if [ "$net" = none ]; then
	args+=(-nic none)
else
	hostfwd=
	for f in "${fwds[@]}"; do hostfwd+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f##*:}"; done
	args+=(-netdev "user,id=net0$hostfwd" -device "virtio-net-$virtio,netdev=net0")
fi
args+=("$@")

set +e
# A timed run reads nothing unless it runs in a terminal: there a person
# must still be able to type into the console (a rescue shell).
if [ "$timeout" = 0 ]; then "${args[@]}"
elif [ -t 0 ]; then timeout --foreground "$timeout" "${args[@]}"
else timeout --foreground "$timeout" "${args[@]}" </dev/null; fi
rc=$?
set -e
if [ "$rc" = 124 ]; then echo "run-qemu.sh: timed out after ${timeout}s" >&2; exit 124; fi
# isa-debug-exit ends QEMU with (status << 1) | 1.
if [ $((rc % 2)) = 1 ]; then exit $(((rc - 1) / 2)); fi
exit "$rc"
