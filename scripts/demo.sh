#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install dependencies, build, run the built-in demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
build/expo demo --dir expo-demo --force
