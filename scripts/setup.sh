#!/usr/bin/env bash
# dysra set-up: installs what the build needs. Idempotent; fast when everything is there.
#   - Debian packages (yaml-cpp, spdlog, fmt, CLI11, Eigen, GoogleTest, Google Benchmark, SentencePiece, zstd,
#     ccache, ninja) through apt-get, when missing.
#   - LibTorch 2.11.0 from the PyPI `torch==2.11.0` wheel into the project-local venv `.venv/`.
# Environment: DYSRA_SKIP_APT=1 skips the apt step (machines without root, e.g. the GPU machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION="2.11.0"
VENV="$ROOT/.venv"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

DEB_PKGS=(build-essential cmake ninja-build ccache pkg-config python3-venv
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libeigen3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsentencepiece-dev sentencepiece libzstd-dev nlohmann-json3-dev
  wordnet-base)

if [[ "${DYSRA_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${DEB_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      || die "apt-get install failed for: ${missing[*]}"
  else
    say "Debian packages: all present"
  fi
fi

# LibTorch from the PyPI wheel, into .venv (python3 must be >= 3.10).
have_torch() {
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("torch").split("+")[0] == "$TORCH_VERSION" else 1)
PY
}
if have_torch; then
  say "LibTorch $TORCH_VERSION: present in .venv"
else
  command -v python3 >/dev/null || die "python3 not found"
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating venv $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
  fi
  say "installing torch==$TORCH_VERSION (LibTorch headers, libraries, TorchConfig.cmake) into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" numpy \
    || die "pip install torch==$TORCH_VERSION failed"
fi
"$VENV/bin/python" -c 'import torch;print(torch.utils.cmake_prefix_path)' > "$VENV/torch_prefix" \
  || die "torch in .venv does not import"
say "Torch CMake prefix: $(cat "$VENV/torch_prefix")"
say "done"
