# ginit: boot a container image as a Linux machine.
#   make demo    build everything, boot the example server in QEMU, curl it
#   make test    every test, VM tests included
#   make bench   size and boot-time tables
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
