#!/usr/bin/env bash
# Builds a C plugin of this repository: OUT_DIR/<name>.wasm + OUT_DIR/<name>.toml.
#
#   build-c.sh PLUGIN_DIR TOOLCHAIN_DIR OUT_DIR
#
# PLUGIN_DIR holds manifest.toml and src/*.c (plugins/c/*,
# tests/plugins-lang/c-*). TOOLCHAIN_DIR is what setup-c.sh installed. Steps:
#   1. wit-bindgen c  : C bindings for world tool-plugin from wit/v0.1 (into a temp dir)
#   2. zig cc         : C -> core wasm module (wasm32-wasi, reactor: no main)
#                       linking tool_plugin_component_type.o, which carries the world's
#                       type information as a custom section
#   3. wasm-tools component new --adapt : core module + WASI preview1 adapter -> component
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 PLUGIN_DIR TOOLCHAIN_DIR OUT_DIR" >&2; exit 2; }
HERE=$(cd "$1" && pwd)
CHAINS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TC=$(cd "$2" 2>/dev/null && pwd) || { echo "build-c.sh: no tool chain directory $2 (run $CHAINS/setup-c.sh $2)" >&2; exit 1; }
mkdir -p "$3"
OUT=$(cd "$3" && pwd)
WIT="$CHAINS/../../wit/v0.1"
NAME=$(sed -n 's/^name *= *"\([a-z0-9-]*\)".*/\1/p' "$HERE/manifest.toml" | head -n1)
[ -n "$NAME" ] || { echo "build-c.sh: no [plugin] name in $HERE/manifest.toml" >&2; exit 1; }
WORLD=tool-plugin
# The C stack (locals whose address is taken, arrays, structs) lives in linear
# memory. zig's default for wasm is 16 MiB, which makes the module ask for
# 16 MiB + data of initial memory: more than memory_mb = 16 allows, so the
# plugin would not even instantiate. 1 MiB is plenty for this tool. zig places
# the stack below the data, so an overflow traps instead of overwriting globals.
STACK_SIZE=${STACK_SIZE:-1048576}

for tool in wit-bindgen wasm-tools zig; do
    [ -x "$TC/bin/$tool" ] || { echo "build-c.sh: $TC/bin/$tool missing; run $CHAINS/setup-c.sh $2" >&2; exit 1; }
done
ADAPTER="$TC/adapter/wasi_snapshot_preview1.reactor.wasm"
[ -f "$ADAPTER" ] || { echo "build-c.sh: $ADAPTER missing; run $CHAINS/setup-c.sh $2" >&2; exit 1; }
[ -f "$WIT/plugin.wit" ] || { echo "build-c.sh: no WIT contract at $WIT" >&2; exit 1; }

GEN=$(mktemp -d)
trap 'rm -rf "$GEN"' EXIT

"$TC/bin/wit-bindgen" c --world "$WORLD" --out-dir "$GEN" "$WIT" >"$GEN/wit-bindgen.log" 2>&1 \
    || { cat "$GEN/wit-bindgen.log" >&2; exit 1; }

# zig cc defines NDEBUG at every -O level above -O0, which silently turns
# assert() into nothing; -UNDEBUG keeps asserts (drop it to compile them out).
CC=("$TC/bin/zig" cc --target=wasm32-wasi -mexec-model=reactor -O2 -UNDEBUG)
objs=()
for src in "$HERE"/src/*.c; do
    obj="$GEN/$(basename "${src%.c}").o"
    # -fmacro-prefix-map: __FILE__ (in assert messages) says src/x.c, not this machine's path.
    "${CC[@]}" -std=c11 -Wall -Wextra -Werror -fmacro-prefix-map="$HERE/"= -I "$GEN" -c "$src" -o "$obj"
    objs+=("$obj")
done
# The generated bindings: compiled like ours, but their warnings are not ours to fix.
"${CC[@]}" -std=c11 -I "$GEN" -c "$GEN/${WORLD//-/_}.c" -o "$GEN/bindings.o"
# -s drops DWARF and the name section (about 700 KiB, mostly wasi-libc's).
# Linking the *_component_type.o is required: without it `component new` fails
# with "module requires an import interface named agent:plugin/host@0.1.0".
"${CC[@]}" "${objs[@]}" "$GEN/bindings.o" "$GEN/${WORLD//-/_}_component_type.o" \
    -Wl,-z,stack-size="$STACK_SIZE" -s -o "$GEN/core.wasm"
"$TC/bin/wasm-tools" component new "$GEN/core.wasm" \
    --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$GEN/$NAME.wasm"

cp "$GEN/$NAME.wasm" "$OUT/$NAME.wasm"
cp "$HERE/manifest.toml" "$OUT/$NAME.toml"
echo "built $OUT/$NAME.wasm ($(wc -c < "$OUT/$NAME.wasm") bytes) and $OUT/$NAME.toml" >&2
