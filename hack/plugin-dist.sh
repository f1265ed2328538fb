#!/usr/bin/env bash
# Builds kubectl-credsync's release archives for linux and darwin, amd64 and
# arm64, into DIST (default dist/), reproducibly (the same sources and Go
# give the same bytes), and writes the Krew manifest with their sha256 into
# DIST/krew/credsync.yaml.
# Run it through make plugin-dist, which passes VERSION and LDFLAGS (the
# Makefile's PLUGIN_LDFLAGS, as make build uses them). PLATFORMS (os/arch
# words, default all four) builds only some of the archives, as the tests
# do for the host's: the manifest then keeps the placeholder of every
# sha256 it did not compute, so it is no release.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${VERSION:?set VERSION, e.g. v0.1.0}"
DIST="${DIST:-dist}"
ALL_PLATFORMS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"
PLATFORMS="${PLATFORMS:-$ALL_PLATFORMS}"
GO="${GO:-go}"
LDFLAGS="${LDFLAGS:?set LDFLAGS: run make plugin-dist}"
for platform in $PLATFORMS; do
  case " $ALL_PLATFORMS " in
    *" $platform "*) ;;
    *) echo "PLATFORMS: $platform is not one of $ALL_PLATFORMS" >&2; exit 1 ;;
  esac
done
mkdir -p "$DIST/krew"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
subst=(-e "s|\${VERSION}|$VERSION|g")
for platform in $PLATFORMS; do
  os="${platform%/*}" arch="${platform#*/}"
  echo "building kubectl-credsync $VERSION for $os/$arch" >&2
  mkdir -p "$work/$os-$arch"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" "$GO" build -trimpath -buildvcs=false \
    -ldflags "$LDFLAGS" \
    -o "$work/$os-$arch/kubectl-credsync" ./cmd/kubectl-credsync
  files=(kubectl-credsync README.md)
  cp README.md "$work/$os-$arch/README.md"
  # krew-index wants the license in the archive: it goes in once the
  # repository has one.
  if [ -f LICENSE ]; then cp LICENSE "$work/$os-$arch/LICENSE"; files+=(LICENSE); fi
  # Modes fixed too, whatever the builder's umask.
  chmod 0755 "$work/$os-$arch/kubectl-credsync"
  (cd "$work/$os-$arch" && chmod 0644 "${files[@]:1}")
  archive="$DIST/kubectl-credsync_${VERSION}_${os}_${arch}.tar.gz"
  # Fixed order, times, owners and modes, and no name or time in the gzip
  # header: the archive's bytes depend on its files alone.
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/$os-$arch" -cf - "${files[@]}" \
    | gzip -n -9 > "$archive"
  sum="$(sha256sum "$archive" | cut -d' ' -f1)"
  subst+=(-e "s|\${SHA256_${os}_${arch}}|$sum|g")
  echo "$sum  $(basename "$archive")" >> "$work/SHA256SUMS"
done
sed "${subst[@]}" plugins/krew/credsync.yaml > "$DIST/krew/credsync.yaml"
sort -k2 "$work/SHA256SUMS" > "$DIST/SHA256SUMS"
if grep -q '\${SHA256_' "$DIST/krew/credsync.yaml"; then
  echo "built for $PLATFORMS only: $DIST/krew/credsync.yaml lacks the other platforms' sha256 (not for release)" >&2
fi
echo "$DIST"
