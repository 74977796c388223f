#!/usr/bin/env bash
# scripts/release.sh VERSION: builds a release into dist/ (replacing it) and
# writes nothing else in the tree:
#   git-credential-bbtoken_VERSION_{linux,darwin}_{amd64,arm64}.tar.gz
#   git-credential-bbtoken_VERSION_windows_{amd64,arm64}.zip
#   git-credential-bbtoken_VERSION_{amd64,arm64}.deb
#   SHA256SUMS
# Reproducible: the same VERSION on the same tree gives the same bytes. The
# binaries are built with -trimpath and no build ID; every archive entry is
# dated SOURCE_DATE_EPOCH (default: the last commit's time), owned by root
# and listed in a fixed order (scripts/mkarchive; dpkg-deb honours
# SOURCE_DATE_EPOCH too).
# Needs: go, git, dpkg-deb, gzip, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "release.sh: $1" >&2; exit "${2:-1}"; }
[ $# -eq 1 ] || die "usage: scripts/release.sh VERSION (e.g. 1.2.0, v1.2.0, 1.3.0~rc1)" 2
version=$1
# The .deb's Version is VERSION without a leading v, so VERSION must be a
# Debian version (no epoch): a digit first, then letters, digits and . + ~ -,
# not ending in -. That also keeps it safe in file names and -ldflags.
if ! [[ $version =~ ^v?[0-9][A-Za-z0-9.+~-]*$ ]] || [[ $version == *- ]]; then
  die "\"$version\" is not a valid version: a digit first (after an optional v), then letters, digits and . + ~ -, e.g. 1.2.0 or 1.3.0~rc1" 2
fi
debversion=${version#v}
for tool in go git dpkg-deb gzip sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
# Pinned, so that a builder's environment cannot change the bytes (or
# raise the CPU level the binaries need).
export CGO_ENABLED=0 GOFLAGS= GOAMD64=v1 GOARM64=v8.0
maintainer=${DEB_MAINTAINER:-The git-credential-bbtoken authors <https://github.com/bbtoken/git-credential-bbtoken/issues>}
ldflags="-s -w -buildid= -X github.com/bbtoken/git-credential-bbtoken/internal/cli.Version=$version"
name=git-credential-bbtoken

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/dist
mkdir -p "$out"

go build -trimpath -o "$work/mkarchive" ./scripts/mkarchive
# The man page, rendered by the binary from its own help text.
go build -trimpath -ldflags "$ldflags" -o "$work/host-$name" ./cmd/git-credential-bbtoken
"$work/host-$name" help --man >"$work/$name.1"

for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
  os=${target%/*} arch=${target#*/}
  exe=$name ext=tar.gz
  if [ "$os" = windows ]; then exe=$name.exe ext=zip; fi
  base=${name}_${version}_${os}_$arch
  dir=$work/$base
  mkdir -p "$dir"
  GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$dir/$exe" ./cmd/git-credential-bbtoken
  cp install.sh README.md LICENSE "$work/$name.1" "$dir/"
  chmod 0755 "$dir/$exe" "$dir/install.sh"
  chmod 0644 "$dir/README.md" "$dir/LICENSE" "$dir/$name.1"
  "$work/mkarchive" "$out/$base.$ext" "$dir"

  [ "$os" = linux ] || continue
  # The Debian package: files 0644/0755 owned by root, dated
  # SOURCE_DATE_EPOCH, and no maintainer scripts: it changes no git config.
  root=$work/deb-$arch
  mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/doc/$name" "$root/usr/share/man/man1"
  cp "$dir/$exe" "$root/usr/bin/$name"
  cp README.md "$root/usr/share/doc/$name/"
  { cat packaging/deb/copyright; sed -e 's/^$/./' -e 's/^/ /' LICENSE; } >"$root/usr/share/doc/$name/copyright"
  gzip -9n <"$work/$name.1" >"$root/usr/share/man/man1/$name.1.gz"
  # Installed-Size as dpkg-gencontrol counts it (KiB per file, rounded up,
  # and 1 per folder), from sizes rather than du, which varies by file system.
  size=$(cd "$root" && find usr -printf '%y %s\n' | awk '{ n += ($1 == "d") ? 1 : int(($2 + 1023) / 1024) } END { print n }')
  sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
    -e "s|@MAINTAINER@|$maintainer|" packaging/deb/control >"$root/DEBIAN/control"
  (cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -type f -exec chmod 0644 {} +
  chmod 0755 "$root/usr/bin/$name"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${version}_$arch.deb" >/dev/null
done

(cd "$out" && LC_ALL=C ls | grep -vx SHA256SUMS | xargs sha256sum) >"$out/SHA256SUMS"
rm -rf dist
mv "$out" dist
echo "dist/ (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH):"
cat dist/SHA256SUMS
