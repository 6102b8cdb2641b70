# SPDX-License-Identifier: GPL-2.0
# Shared settings for the upage scripts; sourced, never run.

UPAGE_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UPAGE_CACHE=${UPAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/upage}
UPAGE_BUILD=${UPAGE_BUILD:-$UPAGE_TOP/build}
export UPAGE_TOP UPAGE_CACHE UPAGE_BUILD

die() { echo "upage: $*" >&2; exit 1; }
info() { echo "upage: $*" >&2; }

# Run as root, through sudo when we are not root already.
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# The versions scripts/deps settled on: KVER_61, KVER_612, SRC_612, ...
load_versions() {
	[ -f "$UPAGE_CACHE/versions" ] || die "no $UPAGE_CACHE/versions: run scripts/deps"
	# shellcheck source=/dev/null
	. "$UPAGE_CACHE/versions"
}

# kernel_paths NAME: set VMLINUZ and KDIR for 6.1, 6.12 or debug.
kernel_paths() {
	load_versions
	case "$1" in
	6.1)
		VMLINUZ=$UPAGE_CACHE/kernels/$KVER_61/vmlinuz
		KDIR=/usr/src/linux-headers-$KVER_61 ;;
	6.12)
		VMLINUZ=$UPAGE_CACHE/kernels/$KVER_612/vmlinuz
		KDIR=/usr/src/linux-headers-$KVER_612 ;;
	debug)
		local h
		h=$(debug_hash)
		VMLINUZ=$UPAGE_CACHE/debug-$h/arch/x86/boot/bzImage
		KDIR=$UPAGE_CACHE/debug-$h ;;
	*) die "unknown kernel '$1' (use 6.1, 6.12 or debug)" ;;
	esac
}

# The debug kernel is cached by the source version and the config fragment.
debug_hash() {
	load_versions
	{ echo "$SRC_612"; cat "$UPAGE_TOP/scripts/debug.config"; } |
		sha256sum | cut -c1-16
}
