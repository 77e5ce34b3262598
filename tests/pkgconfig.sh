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
