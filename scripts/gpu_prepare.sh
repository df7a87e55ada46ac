#!/usr/bin/env bash
# Run HERE (the dev machine) before a GPU run: downloads the Debian packages the build needs into the
# git-ignored .devdeps/, which the device call carries (the GPU machine reaches no network).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.devdeps"
cd "$ROOT/.devdeps"
PKGS=(libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libcli11-dev libgtest-dev
      libgmock-dev googletest nlohmann-json3-dev libsentencepiece-dev libsentencepiece0 zlib1g-dev zlib1g)
for p in "${PKGS[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q "$p" 2>&1 | grep -v unsandboxed || true
  ls "${p}"_*.deb >/dev/null 2>&1 || { echo "[gpu_prepare] error: could not download $p" >&2; exit 1; }
done
du -sh "$ROOT/.devdeps"
