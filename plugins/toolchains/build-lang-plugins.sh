#!/usr/bin/env bash
# Builds the plugins written in Python, JavaScript and C with their pinned tool chains: `build-lang-plugins.sh DIST`.
#
# Installs each tool chain into DIST/toolchains/<lang> (setup-<lang>.sh next
# to this script; a no-op once installed), then builds every plugin with
# `build-<lang>.sh PLUGIN_DIR TOOLCHAIN OUT`:
#   plugins/<lang>/<example>/   -> DIST/plugins-lang/       (examples)
#   tests/plugins-lang/<lang>-*/ -> DIST/test-plugins-lang/  (test plugins)
# A plugin is rebuilt only when its sources, the contract, the build script
# or its tool chain changed: OUT/.built-<dir>-<hash> records their hash.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIST   (tool chains into DIST/toolchains, plugins into DIST/plugins-lang and DIST/test-plugins-lang)" >&2
    exit 2
fi
mkdir -p "$1"
dist=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)

for lang in python js c; do
    "$root/plugins/toolchains/setup-$lang.sh" "$dist/toolchains/$lang"
done

# The hash of a plugin's sources, the contract, its language's build script
# and its tool chain's stamp.
inputs_hash() {
    local dir=$1 chain=$2 lang=$3
    {
        (cd "$dir" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum)
        sha256sum "$root/wit/v0.1/plugin.wit" "$root/plugins/toolchains/build-$lang.sh"
        find "$chain" -maxdepth 1 \( -name '.installed-*' -o -name '.stamp-*' \) -print0 | sort -z | xargs -0 -r sha256sum
    } | sha256sum | cut -c1-16
}

build() {
    local dir=$1 lang=$2 out=$3
    local name chain hash stamp
    name=$(basename "$dir")
    chain=$dist/toolchains/$lang
    hash=$(inputs_hash "$dir" "$chain" "$lang")
    stamp=$out/.built-$name-$hash
    if [ -e "$stamp" ]; then
        return
    fi
    mkdir -p "$out"
    rm -f "$out/.built-$name-"*
    echo "building $lang plugin ${dir#"$root"/} ..."
    "$root/plugins/toolchains/build-$lang.sh" "$dir" "$chain" "$out"
    touch "$stamp"
}

for lang in python js c; do
    for dir in "$root"/plugins/"$lang"/*/; do
        if [ -f "$dir/manifest.toml" ]; then build "${dir%/}" "$lang" "$dist/plugins-lang"; fi
    done
    for dir in "$root"/tests/plugins-lang/"$lang"-*/; do
        if [ -f "$dir/manifest.toml" ]; then build "${dir%/}" "$lang" "$dist/test-plugins-lang"; fi
    done
done
echo "plugins in other languages ready in $dist/plugins-lang (test plugins in $dist/test-plugins-lang)"
