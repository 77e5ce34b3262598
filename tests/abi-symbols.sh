#!/usr/bin/env bash
# The library's binary interface as the dynamic linker sees it: its soname
# and every exported symbol with its version node must be those recorded in
# tests/abi-symbols.txt (a symbol keeps the node of the release that added
# it; a new function is added there and to runtime/lazypage.map under a new
# release's node), and every function the public header declares must be
# exported.
#   abi-symbols.sh LIBRARY HEADER RECORD
set -eu
lib=$1
header=$2
record=$3
export LC_ALL=C

have=$(
	readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/SONAME \1/p'
	# Defined symbols (not UND), without the nodes' own ABS symbols.
	readelf --dyn-syms -W "$lib" |
		awk '$7 != "UND" && $7 != "ABS" && $8 ~ /@/ { print $8 }' |
		sort
)
if ! diff -u "$record" <(printf '%s\n' "$have"); then
	echo "the library's soname or exported symbols (+) differ from $record (-)" >&2
	exit 1
fi
unversioned=$(readelf --dyn-syms -W "$lib" |
	awk '$7 != "UND" && $7 != "ABS" && $5 == "GLOBAL" && $8 !~ /@/ { print $8 }')
if [ -n "$unversioned" ]; then
	echo "exported without a version node: $unversioned" >&2
	exit 1
fi

# Functions the header declares: a line starting with a return type and
# naming lp_something( (macros and comments do not start so).
declared=$(grep -oE '^[a-z][a-z0-9_ *]*[ *](lp_[a-z0-9_]+)\(' "$header" |
	sed -E 's/.*[ *](lp_[a-z0-9_]+)\($/\1/' | sort -u)
[ -n "$declared" ] || { echo "no function found in $header" >&2; exit 1; }
missing=0
for f in $declared; do
	if ! grep -q "^$f@@" <<<"$have"; then
		echo "declared in the header, not exported: $f" >&2
		missing=1
	fi
done
[ "$missing" = 0 ] || exit 1
echo "$(grep -c '@@' <<<"$have") symbols, as recorded; all $(wc -w <<<"$declared") declared functions exported"
