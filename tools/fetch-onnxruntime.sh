#!/usr/bin/env bash
# Fetches the ONNX Runtime 1.23.0 native library for linux-x64 and linux-arm64 into a cache outside the
# repository. Source: the npm package onnxruntime-node@1.23.0, which ships both builds under
# package/bin/napi-v6/linux/{x64,arm64}/libonnxruntime.so.1. We only `npm pack` it (the package's
# postinstall downloads other things; it must never run) and extract the two files.
#
# Idempotent: when both files are in the cache with the expected sha256, it does nothing.
# Safe to run concurrently (parallel builds): one run holds a lock, the others wait and then find the cache.
#
# Cache: ${CLOUDEDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudedge}/onnxruntime/1.23.0/{linux-x64,linux-arm64}/
# Prints the cache directory on success.
set -euo pipefail

version=1.23.0
package="onnxruntime-node@${version}"
# sha256 of the two files as published in onnxruntime-node@1.23.0; npm pack itself checks the tarball's
# sha512 integrity against the registry.
declare -A expected_sha256=(
  [linux-x64]=9aa5b8013190912941d3710604b2cf2369bebf050f683c40dddfc4a50f780c66
  [linux-arm64]=cb068adc50115db2cca077b385a15b35cc07a14ef3bb71aa5d7c66f1982f5264
)
declare -A package_dir=([linux-x64]=x64 [linux-arm64]=arm64)

cache_root="${CLOUDEDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudedge}"
dest="$cache_root/onnxruntime/$version"

verified() {
  local rid=$1 file="$dest/$1/libonnxruntime.so.1"
  [ -f "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "${expected_sha256[$rid]}" ]
}

all_verified() {
  local rid
  for rid in "${!expected_sha256[@]}"; do verified "$rid" || return 1; done
}

if all_verified; then echo "$dest"; exit 0; fi

mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
# Another run may have filled the cache while this one waited for the lock.
if all_verified; then echo "$dest"; exit 0; fi

command -v npm >/dev/null 2>&1 || { echo "fetch-onnxruntime: npm is required (Debian: apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetch-onnxruntime: npm pack $package" >&2
(cd "$work" && npm pack "$package" --silent --no-audit --no-fund --loglevel=error >/dev/null)
tarball=$(ls "$work"/onnxruntime-node-"$version".tgz)

for rid in "${!expected_sha256[@]}"; do
  member="package/bin/napi-v6/linux/${package_dir[$rid]}/libonnxruntime.so.1"
  tar -xzf "$tarball" -C "$work" "$member"
  actual=$(sha256sum "$work/$member" | cut -d' ' -f1)
  if [ "$actual" != "${expected_sha256[$rid]}" ]; then
    echo "fetch-onnxruntime: $member has sha256 $actual, expected ${expected_sha256[$rid]}" >&2
    exit 1
  fi
  mkdir -p "$dest/$rid"
  # Rename within one file system: readers never see a half-written library.
  mv -f "$work/$member" "$dest/$rid/libonnxruntime.so.1.tmp"
  mv -f "$dest/$rid/libonnxruntime.so.1.tmp" "$dest/$rid/libonnxruntime.so.1"
done

all_verified || { echo "fetch-onnxruntime: cache verification failed in $dest" >&2; exit 1; }
echo "fetch-onnxruntime: ONNX Runtime $version cached in $dest" >&2
echo "$dest"
