#!/usr/bin/env bash
# Fetches the pinned uPlot from the npm registry again and checks it against
# the sums in daemon/assets/vendor/uplot/VENDOR.md (the dashboard's charts;
# the daemon embeds the vendored copy, nothing is fetched at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=daemon/assets/vendor/uplot
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent uplot@1.6.32 > /dev/null && tar xzf uplot-1.6.32.tgz)
for f in uPlot.iife.min.js uPlot.min.css; do
  want=$(sed -n "s/^| $f | \([0-9a-f]*\) |$/\1/p" "$dest/VENDOR.md")
  got=$(sha256sum "$tmp/package/dist/$f" | cut -d' ' -f1)
  [ "$want" = "$got" ] || { echo "$f: sha256 $got, VENDOR.md says $want" >&2; exit 1; }
  cmp -s "$tmp/package/dist/$f" "$dest/$f" || cp "$tmp/package/dist/$f" "$dest/$f"
done
cp "$tmp/package/LICENSE" "$dest/LICENSE"
echo "uPlot 1.6.32 in $dest matches the registry's"
