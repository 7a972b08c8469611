#!/usr/bin/env bash
# Installs the pinned Python plugin tool chain (componentize-py) into DEST:
#
#   plugins/toolchains/setup-python.sh DEST      e.g. build/toolchains/python
#
# DEST becomes a venv (python3 -m venv, or $PYTHON -m venv) holding the pins of
# python/requirements.txt next to this script, installed from PyPI as wheels
# only and checked against their hashes. Afterwards DEST/bin/componentize-py is
# the tool the build scripts use. A stamp DEST/.installed-<hash> records which
# pins (and which interpreter) the venv holds; when it is there the script does
# nothing, so a Makefile can call it on every build. Needs: python3 >= 3.10
# with the venv module and network access to PyPI.
set -euo pipefail

die() {
    echo "setup-python.sh: $*" >&2
    exit 1
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST   (installs componentize-py into the venv DEST, e.g. build/toolchains/python)" >&2
    exit 2
fi
dest=$1
here=$(cd "$(dirname "$0")" && pwd)
requirements=$here/python/requirements.txt
python=${PYTHON:-python3}
[ -f "$requirements" ] || die "missing $requirements (is the checkout complete?)"

command -v "$python" >/dev/null 2>&1 \
    || die "'$python' not found. Install Python 3.10 or later (Debian: apt-get install python3 python3-venv), or set PYTHON=/path/to/python3."
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
    || die "'$python' does not run"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$python is Python $py_version; componentize-py needs 3.10 or later. Set PYTHON=/path/to/python3.X."

# The stamp covers the pins and the interpreter line: another python makes
# another venv.
hash=$({ cat "$requirements"; echo "python $py_version"; } | sha256sum | cut -c1-16)
stamp=$dest/.installed-$hash
if [ -f "$stamp" ] && [ -x "$dest/bin/componentize-py" ]; then
    exit 0
fi

# A venv whose interpreter is gone or of another version, or a half-made one,
# is rebuilt rather than patched.
if [ -e "$dest" ] && ! "$dest/bin/python" -c 'import sys' >/dev/null 2>&1; then
    [ -d "$dest" ] && [ -z "$(ls -A "$dest" 2>/dev/null | grep -v '^\.installed-' || true)" ] \
        || [ -f "$dest/pyvenv.cfg" ] \
        || die "$dest exists and is not a Python venv; refusing to delete it. Remove it or pick another DEST."
    rm -rf "$dest"
fi
if [ -x "$dest/bin/python" ] && [ "$("$dest/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$py_version" ]; then
    rm -rf "$dest"
fi
if [ ! -x "$dest/bin/python" ]; then
    mkdir -p "$(dirname "$dest")"
    "$python" -m venv "$dest" \
        || die "could not create a venv at $dest with '$python -m venv'. On Debian/Ubuntu: apt-get install python3-venv."
fi

echo "installing the Python plugin tool chain into $dest (componentize-py from PyPI) ..." >&2
"$dest/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --only-binary :all: --require-hashes -r "$requirements" \
    || die "pip could not install $requirements into $dest. Check that PyPI is reachable (pip's message above), and that a componentize-py wheel exists for this platform ($(uname -sm)); the hashes in requirements.txt cover linux x86_64/aarch64, macOS and Windows x86_64."

want=$(sed -n 's/^componentize-py==\([^ ]*\).*/\1/p' "$requirements")
got=$("$dest/bin/componentize-py" --version 2>/dev/null | awk '{print $2}') \
    || die "$dest/bin/componentize-py does not run after the install"
[ "$got" = "$want" ] || die "$dest/bin/componentize-py is version '$got', expected '$want'"

rm -f "$dest"/.installed-*
touch "$stamp"
echo "componentize-py $got ready in $dest (use $dest/bin/componentize-py)" >&2
