#!/usr/bin/env bash
# Builds a Python plugin of this repository:  build-python.sh PLUGIN_DIR TOOLCHAIN_DIR OUT_DIR
#
# PLUGIN_DIR holds manifest.toml and src/app.py (plugins/python/*,
# tests/plugins-lang/python-*). TOOLCHAIN_DIR is a venv made by setup-python.sh
# (it must hold bin/componentize-py). Writes OUT_DIR/<name>.wasm and
# OUT_DIR/<name>.toml (a copy of manifest.toml). The WIT contract is read from wit/v0.1 of this
# checkout; nothing generated is written into the source tree.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 PLUGIN_DIR TOOLCHAIN_DIR OUT_DIR" >&2
    exit 2
fi
here=$(cd "$1" && pwd)
chains=$(cd "$(dirname "$0")" && pwd)
toolchain=$2
out=$3
wit=$chains/../../wit/v0.1
cpy=$toolchain/bin/componentize-py
setup=$chains/setup-python.sh

[ -x "$cpy" ] || {
    echo "build-python.sh: $cpy not found; install the tool chain first: $setup $toolchain" >&2
    exit 1
}
[ -f "$wit/plugin.wit" ] || { echo "build-python.sh: the contract $wit/plugin.wit is missing" >&2; exit 1; }
name=$(sed -n 's/^name *= *"\([a-z0-9-]*\)".*/\1/p' "$here/manifest.toml" | head -n1)
[ -n "$name" ] || { echo "build-python.sh: no [plugin] name in $here/manifest.toml" >&2; exit 1; }

want=$(sed -n 's/^componentize-py==\([^ ]*\).*/\1/p' "$chains/python/requirements.txt")
got=$("$cpy" --version | awk '{print $2}')
[ "$got" = "$want" ] || echo "build-python.sh: warning: $cpy is componentize-py $got, the pinned version is $want" >&2

mkdir -p "$out"
# componentize-py imports the module while it builds (and snapshots the
# result), and that import writes __pycache__/*.pyc next to the sources: build
# from a copy so the source tree stays clean. Build into a temporary file so a
# failed build never leaves a half-written .wasm behind.
stage=$(mktemp -d)
tmp=$(mktemp "$out/.$name.wasm.XXXXXX")
trap 'rm -rf "$stage" "$tmp"' EXIT
cp -R "$here/src/." "$stage/"
"$cpy" -q -d "$wit" -w tool-plugin componentize app -p "$stage" -o "$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$out/$name.wasm"
cp "$here/manifest.toml" "$out/$name.toml"
echo "built $out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes) and $out/$name.toml" >&2
