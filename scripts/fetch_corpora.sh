#!/usr/bin/env bash
# fetch_corpora.sh — download the Debian packages that carry dysra's real corpora and unpack them locally.
#
#   .cache/debs/     the .deb files (`apt-get download`, no root needed, nothing installed into /)
#   .cache/pkgroot/  their contents (`dpkg -x`), e.g. .cache/pkgroot/usr/share/wordnet/data.noun
#   .cache/pkgroot/kjv.txt   the KJV text dumped by the package's own `bible` binary (31,102 lines)
#
# Idempotent: a package whose .deb is present is not downloaded again; one already unpacked (stamp file) is
# not unpacked again; kjv.txt is regenerated only when missing. Both folders are git-ignored (/.cache/).
# Packages: wordnet-base, r-cran-janeaustenr, bible-kjv-text, bible-kjv, perl-doc, dict-gcide
# (sources and licences: data/README.md). Then run `dysra data build` (dysra::data::build_corpora).
#
# Environment: DYSRA_CACHE (default <repo>/.cache) moves both folders; DYSRA_APT_UPDATE=1 runs
# `apt-get update` first (needs root), for a machine whose package lists are empty.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DYSRA_CACHE:-$ROOT/.cache}"
DEBS="$CACHE/debs"
PKGROOT="$CACHE/pkgroot"
PKGS=(wordnet-base r-cran-janeaustenr bible-kjv-text bible-kjv perl-doc dict-gcide)

say() { printf '[fetch_corpora] %s\n' "$*"; }
die() { printf '[fetch_corpora] error: %s\n' "$*" >&2; exit 1; }

command -v apt-get >/dev/null || die "apt-get not found (a Debian/Ubuntu machine is needed)"
command -v dpkg >/dev/null || die "dpkg not found"
mkdir -p "$DEBS" "$PKGROOT/.stamps"

if [[ "${DYSRA_APT_UPDATE:-0}" == 1 ]]; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq || die "apt-get update failed"
fi

for p in "${PKGS[@]}"; do
  deb=$(ls "$DEBS/${p}_"*.deb 2>/dev/null | head -n1 || true)
  if [[ -z "$deb" ]]; then
    say "downloading $p"
    # apt-get download writes into the current directory; _apt may not write there, which only warns.
    (cd "$DEBS" && apt-get download -q "$p" 2>&1 | grep -v "W: Download is performed unsandboxed" || true)
    deb=$(ls "$DEBS/${p}_"*.deb 2>/dev/null | head -n1 || true)
    [[ -n "$deb" ]] || die "could not download $p (try DYSRA_APT_UPDATE=1 if the package lists are empty)"
  fi
  stamp="$PKGROOT/.stamps/$(basename "$deb").unpacked"
  if [[ ! -f "$stamp" ]]; then
    say "unpacking $(basename "$deb")"
    dpkg -x "$deb" "$PKGROOT" || die "dpkg -x failed for $deb"
    touch "$stamp"
  fi
done

# KJV: the text is compressed in bible.data ("EC02"); the package's own reader dumps it in < 1 s.
BIBLE="$PKGROOT/usr/bin/bible"
BIBLE_DATA_DIR="$PKGROOT/usr/lib"
[[ -f "$BIBLE_DATA_DIR/bible.data" ]] || BIBLE_DATA_DIR="$PKGROOT/usr/share/bible-kjv"
if [[ ! -s "$PKGROOT/kjv.txt" ]]; then
  [[ -x "$BIBLE" ]] || die "$BIBLE missing (bible-kjv not unpacked)"
  say "dumping KJV text with $BIBLE"
  "$BIBLE" -f -p "$BIBLE_DATA_DIR" Gen1:1-Rev22:21 > "$PKGROOT/kjv.txt.tmp" </dev/null \
    || die "bible failed (it needs libreadline8)"
  lines=$(grep -c . "$PKGROOT/kjv.txt.tmp" || true)
  [[ "$lines" -ge 31000 ]] || die "bible dumped only $lines lines (expected 31,102)"
  mv "$PKGROOT/kjv.txt.tmp" "$PKGROOT/kjv.txt"
fi

say "packages in $PKGROOT:"
for p in "${PKGS[@]}"; do
  printf '  %s\n' "$(basename "$(ls "$DEBS/${p}_"*.deb | head -n1)")"
done
say "done"
