#!/usr/bin/env bash
# Builds a JavaScript plugin of this repository:  build-js.sh PLUGIN_DIR TOOLCHAIN_DIR OUT_DIR
#
# PLUGIN_DIR holds manifest.toml, bundle.config.mjs and src/app.js
# (plugins/js/*, tests/plugins-lang/js-*). TOOLCHAIN_DIR is an install made by
# setup-js.sh (it must hold node_modules/.bin/jco). Writes OUT_DIR/<name>.wasm
# and OUT_DIR/<name>.toml (a copy of manifest.toml). The WIT contract is read
# from wit/v0.1 of this checkout; nothing generated is written into the source
# tree. NODE=/path/to/node picks the Node.js that runs jco (default: node).
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
jco=$toolchain/node_modules/@bytecodealliance/jco/dist/jco.js
setup=$chains/setup-js.sh
node=${NODE:-node}

[ -f "$jco" ] || {
    echo "build-js.sh: $jco not found; install the tool chain first: $setup $toolchain" >&2
    exit 1
}
command -v "$node" >/dev/null 2>&1 || { echo "build-js.sh: '$node' not found; install Node.js 20.19+ or set NODE=/path/to/node" >&2; exit 1; }
[ -f "$wit/plugin.wit" ] || { echo "build-js.sh: the contract $wit/plugin.wit is missing" >&2; exit 1; }
name=$(sed -n 's/^name *= *"\([a-z0-9-]*\)".*/\1/p' "$here/manifest.toml" | head -n1)
[ -n "$name" ] || { echo "build-js.sh: no [plugin] name in $here/manifest.toml" >&2; exit 1; }

want=$("$node" -p "require('$chains/js/package.json').dependencies['@bytecodealliance/jco']")
got=$("$node" "$jco" --version)
[ "$got" = "$want" ] || echo "build-js.sh: warning: $jco is jco $got, the pinned version is $want" >&2

mkdir -p "$out"
# Build from a copy so nothing the build leaves behind lands in the source
# tree, and into a temporary file so a failed build never leaves a
# half-written .wasm behind.
# --bundle: joins src/*.js into one module (ComponentizeJS takes a single
#   file) and rewrites \p{...} regex literals, which the engine cannot parse.
# No --disable: stdio must stay on (console.error and the message of an
#   uncaught exception go to stderr, which the host logs); the other WASI
#   features cost almost nothing and the host links them all.
stage=$(mktemp -d)
tmp=$(mktemp "$out/.$name.wasm.XXXXXX")
trap 'rm -rf "$stage" "$tmp"' EXIT
cp -R "$here/src" "$here/bundle.config.mjs" "$stage/"
"$node" "$jco" componentize "$stage/src/app.js" --bundle --bundle-config "$stage/bundle.config.mjs" \
    --wit "$wit" --world-name tool-plugin --out "$tmp" >"$stage/jco.log" 2>&1 || {
    cat "$stage/jco.log" >&2
    echo "build-js.sh: jco componentize failed (its output is above)" >&2
    exit 1
}
chmod 0644 "$tmp"
mv "$tmp" "$out/$name.wasm"
cp "$here/manifest.toml" "$out/$name.toml"
echo "built $out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes) and $out/$name.toml" >&2
