#!/usr/bin/env bash
# An embedder's build: compile and link a program against lazypage with
# nothing but pkg-config (the uninstalled .pc file of this build tree).
#   pkgconfig.sh BUILD_ROOT SOURCE [SANITIZERS]
# SANITIZERS: the build's b_sanitize (an embedder of a sanitized library
# builds with the same sanitizers, or its runtime is not loaded first).
set -eu
build=$1
src=$2
san=${3:-none}
out=$(mktemp /tmp/lp-pkgconfig-XXXXXX)
trap 'rm -f "$out"' EXIT
export PKG_CONFIG_PATH=$build/meson-uninstalled
flags=$(pkg-config --cflags --libs lazypage)
echo "pkg-config: $flags"
sanflags=()
[ "$san" = none ] || sanflags=("-fsanitize=$san")
cc -std=c11 -Wall -Werror "${sanflags[@]}" -o "$out" "$src" $flags -Wl,-rpath,"$build"
"$out" --help | grep -q "usage: lp-demo"
echo "built and ran an embedder's program"

# The version pkg-config tells is the header's and the library's, and the
# library passes the check of a program built against its header.
cat >"$out.c" <<'C'
#include <lazypage/lazypage.h>
#include <stdio.h>
int main(void)
{
	printf("%d.%d.%d %s\n", LP_VERSION_MAJOR, LP_VERSION_MINOR,
	       LP_VERSION_PATCH, lp_version());
	return LP_VERSION_CHECK() != 0;
}
C
trap 'rm -f "$out" "$out.c"' EXIT
cc -std=c11 -Wall -Werror "${sanflags[@]}" -o "$out" "$out.c" $flags -Wl,-rpath,"$build"
v=$(pkg-config --modversion lazypage)
got=$("$out")
[ "$got" = "$v $v" ] || { echo "pkg-config says $v; header and library: $got" >&2; exit 1; }
echo "version $v: pkg-config, header and library agree; LP_VERSION_CHECK() passes"
