#!/usr/bin/env bash
# Owns the npm tree the MCP client interop tests run the reference server (server-everything) from: `setup-npm.sh DIR`.
#
# Installs package.json and package-lock.json next to this script into DIR
# with `npm ci`: exactly the locked versions, from the npm registry, no
# scripts that download anything else. A marker DIR/.installed-<hash> records
# which lock file (and which node major) the tree holds; when it is there the
# script does nothing, so `make` can call it on every test run.
#
# After it, the server is started (stdio transport) as
#     node DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio
# with the `node` on PATH (or $NODE): Node 20 or newer, no other runtime.
# The last line printed is that entry file's path.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (installs tests/interop/package-lock.json into DIR/node_modules)" >&2
    exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
node=${NODE:-node}
entry=$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js

# The server and its SDK need Node 20 (one dependency says engines >=20); an
# older node fails at import time with an error that names nothing useful.
node_major=$("$node" -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "$0: $node is Node $("$node" --version); server-everything needs Node 20 or newer" >&2
    exit 1
fi
hash=$({ cat "$here/package.json" "$here/package-lock.json"; echo "node $node_major"; } | sha256sum | cut -c1-16)
marker=$dir/.installed-$hash

if [ -f "$marker" ] && [ -f "$entry" ]; then
    echo "$entry"
    exit 0
fi

# npm ci works on the project in DIR: it gets this copy of the manifest and
# lock, and removes whatever node_modules was there before.
rm -f "$dir"/.installed-*
cp "$here/package.json" "$here/package-lock.json" "$dir/"
npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null

if [ ! -f "$entry" ]; then
    echo "$0: npm ci finished but $entry is missing" >&2
    exit 1
fi
# The entry imports the transports lazily; the SDK module the stdio one needs
# must resolve from DIR, or the server dies at its first start.
(cd "$dir" && "$node" --input-type=module -e 'await import("@modelcontextprotocol/sdk/server/stdio.js")')

touch "$marker"
echo "npm tree with the MCP reference server (server-everything) ready in $dir" >&2
echo "$entry"
