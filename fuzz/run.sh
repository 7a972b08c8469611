#!/usr/bin/env bash
# Runs one fuzz target of fuzz/ (docs/fuzzing.md) on its committed corpus.
#
#   fuzz/run.sh <target> [seconds]     fuzz (default 600 s), new inputs go to fuzz/corpus/<target>
#   fuzz/run.sh cmin <target>          minimize fuzz/corpus/<target> in place
#
# Needs cargo-fuzz (cargo install cargo-fuzz --locked --version 0.13.2). The
# toolchain is stable: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's
# nightly-only flags. Set CARGO_TARGET_DIR to keep the (large) build
# elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
BUILD=(--sanitizer none --codegen-units 16)

dict_for() {
    case "$1" in
        manifest | config) echo dicts/toml.dict ;;
        sse) echo dicts/sse.dict ;;
        schema) echo dicts/json.dict ;;
        *) echo "" ;;
    esac
}

if [ "${1:-}" = cmin ]; then
    target=${2:?target}
    # Keep the inputs that cover every edge (not every hit-count bucket): the
    # committed corpora stay small.
    exec cargo fuzz cmin "${BUILD[@]}" "$target" "corpus/$target" -- -rss_limit_mb=4096 -timeout=10 -use_counters=0 -use_value_profile=0
fi

target=${1:?usage: fuzz/run.sh <target> [seconds] | cmin <target>}
seconds=${2:-600}
args=(-max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1)
dict=$(dict_for "$target")
[ -n "$dict" ] && args+=(-dict="$dict")
# Argument validation is where plugin-supplied input meets the most host
# code: keep fuzzing past a finding and collect every one in
# fuzz/artifacts/schema/ (issue 11 findings 2 and 3 were blowups here).
[ "$target" = schema ] && args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
mkdir -p "artifacts/$target"
exec cargo fuzz run "${BUILD[@]}" "$target" "corpus/$target" -- "${args[@]}"
