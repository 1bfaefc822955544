# ginit: boot a container image as a Linux machine.
#   make demo    build everything, boot the example server in QEMU, curl it
#   make test    every test, VM tests included
#   make bench   size and boot-time tables
#   make sizes CONFIG=linuxboot   what takes the space in an image
#   make check-reproducible CONFIG=linuxboot   two builds, same sha256
#   make test-systemd   boot a debootstrapped Debian's systemd under chrootrun
# Variables: CONFIG (minimal|debug|linuxboot), KERNEL (a bzImage), KMODULES
# (its /lib/modules/<release> directory).

CONFIG   ?= minimal
BUILD    ?= build
KERNEL   ?= $(BUILD)/kernel/vmlinuz
KMODULES ?= $(wildcard $(BUILD)/kernel/lib/modules/*)
GO       ?= go

export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin

.PHONY: all deps kernel image images disk demo test test-unit test-vm bench clean

all: image

deps:
	scripts/install-deps.sh

# Debian's current cloud kernel, unpacked under build/kernel.
kernel: deps
	scripts/fetch-kernel.sh $(BUILD)/kernel

# build/$(CONFIG).cpio (+ compressed forms), with the kernel's modules.
image: kernel
	$(GO) run ./cmds/mkimage -config $(CONFIG) -kernel-modules "$(or $(KMODULES),$(wildcard $(BUILD)/kernel/lib/modules/*))" -o $(BUILD)

images: kernel
	for c in minimal debug linuxboot; do $(MAKE) --no-print-directory image CONFIG=$$c || exit 1; done

# What takes the space in $(CONFIG)'s image, per Go command of the gbb
# binary, per kernel module and per file, raw and xz (builds the image, and an
# unstripped copy of its gbb binary to measure the commands: a minute more).
.PHONY: sizes check-reproducible
sizes: kernel
	$(GO) run ./cmds/mkimage -config $(CONFIG) -sizes -kernel-modules "$(or $(KMODULES),$(wildcard $(BUILD)/kernel/lib/modules/*))" -o $(BUILD)

# Builds $(CONFIG) twice into temp dirs; fails unless the sha256s match.
check-reproducible: kernel
	KMODULES="$(KMODULES)" scripts/check-reproducible.sh $(CONFIG)

demo: deps kernel
	$(MAKE) --no-print-directory image CONFIG=minimal
	scripts/demo.sh

test: deps kernel
	$(MAKE) --no-print-directory image CONFIG=minimal
	$(MAKE) --no-print-directory image CONFIG=linuxboot
	scripts/test.sh

# The root is made once in $(BUILD)/systemd/root; make test runs this test too.
.PHONY: test-systemd
test-systemd:
	scripts/test-systemd.sh $(BUILD)/systemd/root

bench: deps kernel
	$(MAKE) --no-print-directory images
	$(GO) run ./bench

clean:
	rm -rf $(BUILD)
