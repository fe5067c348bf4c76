#!/usr/bin/env bash
# Fetch, here, the wheels the 16-core device machine lacks (Python 3.12, x86-64) into .whl/ (git-ignored).
# It has msgpack, psutil, sortedcontainers, uvloop and prometheus-client; nothing can be fetched there.
# Usage: bash bench/device/wheels.sh      then carry ".whl" in the device run (bench/device/run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do platforms+=(--platform "$p"); done
# Pinned to what this checkout is tested with (.venv), so the device runs the same code.
for pkg in tornado lz4 argon2-cffi argon2-cffi-bindings cffi pycparser redis rjsmin; do
  version=$(.venv/bin/python -m pip show "$pkg" 2>/dev/null | awk '/^Version:/ {print $2}')
  spec="$pkg${version:+==$version}"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none "${platforms[@]}" -d .whl "$spec" \
    || python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl "$spec"
done
ls -la .whl
du -sh .whl
