#!/usr/bin/env bash
# Owns the Python venv the interop tests run the official clients from (the MCP SDK, `openai`): `setup-python.sh DIR`.
#
# Creates DIR as a venv (python3 -m venv, or $PYTHON) and installs the pins in
# requirements.txt next to this script, wheels only: nothing is compiled, so a
# machine without a C toolchain gets the same packages as CI. A marker
# DIR/.installed-<hash> records which requirements (and which interpreter) the
# venv holds; when it is there the script does nothing, so `make` can call it
# on every test run. Only PyPI is needed.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (creates a venv at DIR with tests/interop/requirements.txt)" >&2
    exit 2
fi
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
requirements=$here/requirements.txt
python=${PYTHON:-python3}

# The pins were resolved for one interpreter line; a venv built by another
# python is a different venv, so its version is part of the key.
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
hash=$({ cat "$requirements"; echo "python $py_version"; } | sha256sum | cut -c1-16)
marker=$dir/.installed-$hash

if [ -f "$marker" ]; then
    exit 0
fi

# A venv from another interpreter, or a half-made one, is rebuilt rather than
# patched: pip cannot be trusted to fix a venv whose python moved.
if [ -e "$dir" ] && ! "$dir/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$dir"
fi
if [ -x "$dir/bin/python" ] && [ "$("$dir/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$py_version" ]; then
    rm -rf "$dir"
fi
if [ ! -x "$dir/bin/python" ]; then
    "$python" -m venv "$dir"
fi

# Wheels only and every dependency pinned: the install is reproducible and
# fails loudly (rather than building an sdist) if a pin has no wheel here.
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
    --only-binary :all: -r "$requirements"
"$dir/bin/python" -m pip check --disable-pip-version-check >/dev/null
"$dir/bin/python" -c 'import mcp.client.session, mcp.client.stdio, mcp.client.streamable_http, openai, prometheus_client.parser, openapi_spec_validator'

rm -f "$dir"/.installed-*
touch "$marker"
echo "python venv with the interop clients (MCP SDK, openai, prometheus_client, openapi-spec-validator) ready in $dir"
