#!/usr/bin/env bash
# Install the pinned tool chain for C plugins of agent-host into DEST.
#
#   setup-c.sh DEST        (in agent-host: plugins/toolchains/setup-c.sh build/toolchains/c)
#
# DEST/bin/wit-bindgen   C bindings from the WIT contract   (crates.io: wit-bindgen-cli, feature c only)
# DEST/bin/wasm-tools    `component embed` / `component new` (crates.io: wasm-tools, feature component only)
# DEST/bin/zig           zig cc for wasm32-wasi               (PyPI: ziglang wheel, no Python needed to run it)
# DEST/adapter/wasi_snapshot_preview1.reactor.wasm            (crates.io: wasi-preview1-component-adapter-provider)
#
# Versions: versions.env, in c/ beside this script (agent-host's plugins/toolchains)
# or beside it (a plugin made with `agent-host plugins new --lang c`, which
# carries a copy of this script as toolchain/setup.sh). Idempotent: when DEST/.stamp-c
# matches the pinned versions it does nothing. Needs cargo (Rust >= 1.88) and
# python3 with pip; fetches from crates.io and PyPI only.
# Environment: CARGO (default cargo), PYTHON (default python3),
#              CARGO_BUILD_JOBS (default: all cores, run under `nice`).
set -euo pipefail

die() { echo "setup-c.sh: error: $*" >&2; exit 1; }
say() { echo "setup-c.sh: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: $0 DEST   (e.g. $0 .toolchain)" >&2; exit 2; }
mkdir -p "$1" || die "cannot create $1"
DEST=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VERSIONS="$HERE/c/versions.env"
[ -f "$VERSIONS" ] || VERSIONS="$HERE/versions.env"
[ -f "$VERSIONS" ] || die "missing $HERE/c/versions.env (or $HERE/versions.env)"
# shellcheck disable=SC1090
. "$VERSIONS"
for v in WIT_BINDGEN_VERSION WASM_TOOLS_VERSION ADAPTER_CRATE_VERSION ADAPTER_REACTOR_SHA256 ZIGLANG_VERSION; do
    [ -n "${!v:-}" ] || die "$VERSIONS does not set $v"
done
CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-python3}

STAMP="$DEST/.stamp-c"
WANT="wit-bindgen-cli=$WIT_BINDGEN_VERSION wasm-tools=$WASM_TOOLS_VERSION adapter=$ADAPTER_CRATE_VERSION ziglang=$ZIGLANG_VERSION"
ADAPTER="$DEST/adapter/wasi_snapshot_preview1.reactor.wasm"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
   && [ -x "$DEST/bin/wit-bindgen" ] && [ -x "$DEST/bin/wasm-tools" ] \
   && [ -x "$DEST/bin/zig" ] && [ -f "$ADAPTER" ]; then
    say "C tool chain already installed in $DEST ($WANT)"
    exit 0
fi
rm -f "$STAMP"

command -v "$CARGO" >/dev/null 2>&1 \
    || die "cargo not found. Install Rust (rustup, Rust >= 1.88) or set CARGO=/path/to/cargo."
command -v "$PYTHON" >/dev/null 2>&1 \
    || die "$PYTHON not found. Install Python 3 with pip or set PYTHON=/path/to/python3."
"$PYTHON" -m pip --version >/dev/null 2>&1 \
    || die "'$PYTHON -m pip' does not work. Install pip (Debian: apt-get install python3-pip)."

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# cargo install CRATE VERSION FEATURES BINARY: skipped when BINARY --version already says VERSION.
cargo_tool() {
    local crate=$1 version=$2 features=$3 bin=$4
    if [ -x "$DEST/bin/$bin" ] && "$DEST/bin/$bin" --version 2>/dev/null | grep -qE " ${version//./\\.}( |\$)"; then
        say "$crate $version: already installed"
        return
    fi
    say "building $crate $version from crates.io (features: $features); this takes a few minutes"
    nice -n 10 "$CARGO" install "$crate" --version "=$version" --locked --force \
        --no-default-features --features "$features" --root "$DEST" \
        || die "cargo install $crate $version failed (see above). Check that crates.io is reachable and that Rust is >= 1.88 ($("$CARGO" --version 2>&1))."
    "$DEST/bin/$bin" --version >/dev/null || die "$DEST/bin/$bin does not run after install"
}

cargo_tool wit-bindgen-cli "$WIT_BINDGEN_VERSION" c wit-bindgen
cargo_tool wasm-tools "$WASM_TOOLS_VERSION" component wasm-tools

# The adapter: the crate only embeds pre-built .wasm files; let cargo fetch it
# (checksum-verified against the crates.io index) and copy the reactor one.
if [ -f "$ADAPTER" ] && [ "$(sha256_of "$ADAPTER")" = "$ADAPTER_REACTOR_SHA256" ]; then
    say "adapter $ADAPTER_CRATE_VERSION: already installed"
else
    say "fetching wasi-preview1-component-adapter-provider $ADAPTER_CRATE_VERSION from crates.io"
    proj="$DEST/adapter/fetch"
    mkdir -p "$proj/src"
    cat > "$proj/Cargo.toml" <<TOML
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_CRATE_VERSION"
TOML
    : > "$proj/src/lib.rs"
    "$CARGO" fetch --manifest-path "$proj/Cargo.toml" >&2 \
        || die "cargo fetch of wasi-preview1-component-adapter-provider $ADAPTER_CRATE_VERSION failed (is crates.io reachable?)"
    src=$("$CARGO" metadata --format-version 1 --manifest-path "$proj/Cargo.toml" \
        | "$PYTHON" -c 'import json,sys; m=json.load(sys.stdin); print([p["manifest_path"] for p in m["packages"] if p["name"]=="wasi-preview1-component-adapter-provider"][0])') \
        || die "cannot locate the fetched adapter crate"
    cp "$(dirname "$src")/artefacts/wasi_snapshot_preview1.reactor.wasm" "$ADAPTER.tmp"
    got=$(sha256_of "$ADAPTER.tmp")
    [ "$got" = "$ADAPTER_REACTOR_SHA256" ] \
        || die "adapter checksum mismatch: got $got, pinned $ADAPTER_REACTOR_SHA256 (versions.env)"
    mv "$ADAPTER.tmp" "$ADAPTER"
    rm -rf "$proj"
fi

# Zig: the PyPI wheel is just the zig binary plus its lib/ (clang, lld, wasi-libc
# sources). Installed with --target rather than into a venv (no python3-venv
# needed); DEST/bin/zig runs the binary directly and keeps its cache in DEST.
ZIGPY="$DEST/ziglang-py"
if [ -x "$ZIGPY/ziglang/zig" ] && [ "$("$ZIGPY/ziglang/zig" version 2>/dev/null)" = "$ZIGLANG_VERSION" ]; then
    say "ziglang $ZIGLANG_VERSION: already installed"
else
    say "installing ziglang $ZIGLANG_VERSION from PyPI (about 95 MB download)"
    rm -rf "$ZIGPY"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --disable-pip-version-check --no-input --quiet \
        --only-binary :all: --no-deps --target "$ZIGPY" "ziglang==$ZIGLANG_VERSION" >&2 \
        || die "pip install ziglang==$ZIGLANG_VERSION failed (is PyPI reachable? is there a wheel for $(uname -sm)?)"
    [ -x "$ZIGPY/ziglang/zig" ] || die "the ziglang wheel has no ziglang/zig binary"
fi
mkdir -p "$DEST/bin"
cat > "$DEST/bin/zig" <<SH
#!/bin/sh
# zig $ZIGLANG_VERSION from the PyPI wheel ziglang (installed by setup-c.sh).
# Relative to this file, so the tool chain directory can be moved; zig's cache
# (wasi-libc is compiled on first use) is kept beside it.
d=\$(CDPATH= cd -- "\$(dirname -- "\$0")/.." && pwd) || exit 1
: "\${ZIG_GLOBAL_CACHE_DIR:=\$d/zig-cache}"
: "\${ZIG_LOCAL_CACHE_DIR:=\$ZIG_GLOBAL_CACHE_DIR}"
export ZIG_GLOBAL_CACHE_DIR ZIG_LOCAL_CACHE_DIR
exec "\$d/ziglang-py/ziglang/zig" "\$@"
SH
chmod +x "$DEST/bin/zig"

# Smoke test (also warms zig's cache: wasi-libc is compiled on first use).
say "smoke test: C -> core wasm -> component"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cat > "$t/smoke.wit" <<'WIT'
package smoke:test;
world smoke { export answer: func() -> u32; }
WIT
cat > "$t/main.c" <<'C'
#include <stdio.h>
#include "smoke.h"
uint32_t exports_smoke_answer(void) { fprintf(stderr, "smoke\n"); return 42; }
C
(
    # `set -e` does not work left of `||`: chain with && instead.
    cd "$t" &&
    "$DEST/bin/wit-bindgen" c --out-dir . smoke.wit &&
    # The flags of the plugin builds (zig caches wasi-libc per flag set).
    "$DEST/bin/zig" cc --target=wasm32-wasi -mexec-model=reactor -O2 -UNDEBUG \
        -o core.wasm main.c smoke.c smoke_component_type.o -Wl,-z,stack-size=1048576 -s &&
    "$DEST/bin/wasm-tools" component new core.wasm \
        --adapt "wasi_snapshot_preview1=$ADAPTER" -o smoke.wasm
) > "$t/log" 2>&1 || {
    cat "$t/log" >&2
    die "smoke test failed: the tools installed but cannot build a component (see above)"
}

echo "$WANT" > "$STAMP"
say "C tool chain ready in $DEST ($WANT)"
