#!/usr/bin/env bash
# The whole test suite: vet, unit and root tests, and the VM tests against
# the kernel and image in build/ (make test builds them first).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
# VM tests fail instead of skipping when their kernel or image is missing.
export GINIT_VM_TESTS=1
# The real kernel's modules, for the module parser's test.
GINIT_KERNEL_MODULES=$(ls -d "$PWD"/build/kernel/lib/modules/*/ | head -n1)
export GINIT_KERNEL_MODULES=${GINIT_KERNEL_MODULES%/}
# The Debian root with systemd that the systemd tests boot (made once, cached).
scripts/test-systemd.sh --root-only build/systemd/root
go vet ./...
go test -count=1 -timeout 25m ./... 2>&1 | tee build/test.log
