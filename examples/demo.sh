#!/usr/bin/env bash
# The main job of `make demo`: load the example plugins (tools and
# extensions), run an agent session, and call several tools through the
# sandbox, with real output.
#   usage: examples/demo.sh path/to/agent-host path/to/plugins
set -euo pipefail
bin="$1"
plugins="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/workspace"
cat > "$work/config.toml" <<TOML
[grants.fs]
dirs = [{ host = "workspace", guest = "/workspace", access = "read-write" }]
TOML
host() { "$bin" --plugins "$plugins" --data-dir "$work/data" --config "$work/config.toml" "$@"; }
# Bold headings only on a terminal (no colour codes in a log or a pipe).
if [ -t 1 ]; then B=$'\033[1m'; N=$'\033[0m'; else B=''; N=''; fi
step() { printf '\n%s$ agent-host %s%s\n' "$B" "$*" "$N"; host "$@"; }

step plugins list
step tools list
printf '\n%s# An agent session on the offline scripted model (examples/demo-script.json).%s\n' "$B" "$N"
printf '# With a real model: add --provider openai (OPENAI_API_KEY), or --provider openai --base-url http://localhost:11434/v1 for Ollama.\n'
step run "Our order is 4,250 with a 12% surcharge plus 380 shipping: what is the total? And how long is our tagline? Keep a note." --script "$(dirname "$0")/demo-script.json"
printf '\n%s# What the extensions (redactor, policy-guard, loop-breaker, audit-logger) did during that session.%s\n' "$B" "$N"
step stats
printf '\n%s# The same tools, called directly.%s\n' "$B" "$N"
step tools call calc --args '{"expression": "2^10 + sqrt(144) * (3 - 1)"}'
step tools call word_count --args '{"text": "WebAssembly tools, sandboxed by default.\nOne call, one fresh instance."}'
step tools call slugify --args '{"text": "Hello, Agent Host!"}'
step tools call regex_search --args '{"pattern": "\\b\\w+box\\w*", "text": "sandbox and toolbox and boxes"}'
step tools call fs_write --args '{"path": "/workspace/hello.txt", "content": "written from inside the sandbox"}'
step tools call fs_list --args '{"path": "/workspace"}'
step tools call fs_read --args '{"path": "/workspace/hello.txt"}'
printf '\n# the host file really exists, and nothing outside the grant is reachable:\n'
cat "$work/workspace/hello.txt"; echo
step tools call fs_read --args '{"path": "/etc/passwd"}' || echo "(exit $? — denied, as it should be)"
step tools call note_add --args '{"title": "demo", "body": "notes persist in the host key-value store"}'
step tools call note_list
step tools call calc --args '{"expression": "1 / 0"}' || echo "(exit $? — a tool error, returned as data)"
printf '\ndemo finished: every call above ran in a fresh, deny-by-default sandbox.\n'
