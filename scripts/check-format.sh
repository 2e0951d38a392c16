#!/usr/bin/env bash
# Fails, listing the files, when a C++ file of the tree differs from what clang-format
# (.clang-format: Google style, 100 columns) makes of it. Fix with:
#   clang-format -i $(git ls-files '*.cpp' '*.h')
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then echo "format check: clang-format is missing"; exit 1; fi
  echo "format check: skipped (clang-format is not installed)"
  exit 0
fi
mapfile -t files < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find src tests bench fuzz -name '*.cpp' -o -name '*.h')
if ! clang-format --dry-run -Werror "${files[@]}" 2>"${TMPDIR:-/tmp}/expo-format.log"; then
  grep -o '^[^:]*\.\(cpp\|h\):' "${TMPDIR:-/tmp}/expo-format.log" | sort -u | sed 's/:$//; s/^/  not formatted: /'
  echo "format check: FAILED; run clang-format -i on the files above"
  exit 1
fi
echo "format check: ${#files[@]} files formatted"
