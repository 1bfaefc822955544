#!/usr/bin/env bash
# Builds an image config twice, each time into its own temp output directory
# (and with its own TMPDIR), and compares the sha256 of NAME.cpio and of its
# compressed forms. Prints both sums of each file; exits 1 when any differ.
#
#   scripts/check-reproducible.sh CONFIG [OTHER_CHECKOUT]
#
# With OTHER_CHECKOUT (another clone or `git worktree` of the same commit,
# at another path), the second build runs there: this shows that the
# checkout's path is not in the image either. Both use this checkout's
# kernel modules (KMODULES, default build/kernel/lib/modules/<release>).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
config=${1:?usage: scripts/check-reproducible.sh CONFIG [OTHER_CHECKOUT]}
repos=("$PWD" "$(cd "${2:-.}" && pwd)")
kmods=${KMODULES:-$(echo "$PWD"/build/kernel/lib/modules/*)}
[ -d "$kmods" ] || { echo "check-reproducible: no kernel modules at $kmods: run make kernel" >&2; exit 2; }
kmods=$(cd "$kmods" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
describe() { # the commit of checkout $1, marked when it has uncommitted changes
	local c
	c=$(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo "no git")
	git -C "$1" diff --quiet HEAD 2>/dev/null || c="$c+uncommitted changes"
	echo "$c"
}
echo "$(go version); $(xz --version | head -1); kernel modules $(basename "$kmods")"
for i in 1 2; do
	repo=${repos[$((i - 1))]}
	mkdir "$work/out$i" "$work/tmp$i"
	echo "build $i: $config in $repo ($(describe "$repo")) -> $work/out$i"
	(cd "$repo" && go build -o "$work/mkimage$i" ./cmds/mkimage)
	if ! (cd "$repo" && TMPDIR="$work/tmp$i" "$work/mkimage$i" -config "$config" -kernel-modules "$kmods" -o "$work/out$i") >"$work/log$i" 2>&1; then
		cat "$work/log$i" >&2
		exit 2
	fi
	tail -n 1 "$work/log$i"
done

status=0
for f in "$work/out1"/*; do
	name=$(basename "$f")
	a=$(sha256sum <"$f" | cut -d' ' -f1)
	b=$(sha256sum <"$work/out2/$name" | cut -d' ' -f1)
	verdict=same
	[ "$a" = "$b" ] || { verdict=DIFFERENT; status=1; }
	printf '%-20s build 1 %s\n%-20s build 2 %s  %s\n' "$name" "$a" "" "$b" "$verdict"
done
if [ "$status" != 0 ] && command -v cpio >/dev/null; then
	echo "entries that differ:"
	for i in 1 2; do mkdir "$work/x$i" && (cd "$work/x$i" && cpio -id --quiet --no-absolute-filenames <"$work/out$i/$config.cpio" 2>/dev/null || true); done
	diff -rq --no-dereference "$work/x1" "$work/x2" | sed "s|$work/x[12]/||g" || true
fi
exit "$status"
