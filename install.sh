#!/usr/bin/env bash
# Installs git-credential-bbtoken (default ~/.local/bin; PREFIX changes the
# prefix: $PREFIX/bin, and the man page goes to $PREFIX/share/man/man1) and
# runs `setup` so git uses it for https://bitbucket.org. Safe to rerun.
# Extra arguments go to setup, e.g.
#   ./install.sh --host https://bitbucket.example.com
# Run from an extracted release archive, it installs the binary beside it
# (no Go needed), checked against SHA256SUMS when that file and the archive
# are beside the archive's folder; run from a source checkout, it builds
# with Go.
set -euo pipefail
cd "$(dirname "$0")"

die() { echo "install.sh: $1" >&2; exit 1; }

prefix=${PREFIX:-$HOME/.local}
bindir=$prefix/bin
mandir=$prefix/share/man/man1
exe=git-credential-bbtoken
if [ -f "$exe.exe" ] && [ ! -f go.mod ]; then exe=$exe.exe; fi
command -v git >/dev/null || die "git is needed"
if [ -f go.mod ]; then
  command -v go >/dev/null || die "Go 1.26 or newer is needed to build (https://go.dev/dl/), or install a release archive or the .deb (see README.md)"
elif [ ! -f "$exe" ]; then
  die "run me from a source checkout or from an extracted release archive ($exe is not beside me)"
fi

# sha256 prints the SHA-256 of its standard input (coreutils, or macOS's shasum).
have_sha256() { command -v sha256sum >/dev/null || command -v shasum >/dev/null; }
sha256() {
  if command -v sha256sum >/dev/null; then sha256sum | cut -d' ' -f1
  else shasum -a 256 | cut -d' ' -f1
  fi
}

# verify checks the archive this folder came from against ../SHA256SUMS,
# then this folder's binary against the one in the archive: SHA256SUMS
# lists archives, and the binary is what gets installed.
verify() {
  local name archive="" want got
  name=$(basename "$PWD")
  for ext in tar.gz zip; do
    if [ -f "../$name.$ext" ]; then archive=$name.$ext; fi
  done
  if [ ! -f ../SHA256SUMS ] || [ -z "$archive" ] || ! have_sha256; then
    echo "checksum not verified: keep SHA256SUMS and $name.tar.gz (or .zip) beside this folder to have it checked"
    return
  fi
  want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' ../SHA256SUMS)
  [ -n "$want" ] || die "../SHA256SUMS has no line for $archive: refusing to install"
  got=$(sha256 <"../$archive")
  [ "$got" = "$want" ] || die "../$archive does not match its SHA-256 in ../SHA256SUMS: refusing to install"
  case $archive in
    *.tar.gz) got=$(tar -xzOf "../$archive" "$name/$exe" 2>/dev/null | sha256) ;;
    *) if command -v unzip >/dev/null; then got=$(unzip -p "../$archive" "$name/$exe" 2>/dev/null | sha256)
       else got=$(tar -xOf "../$archive" "$name/$exe" 2>/dev/null | sha256)   # bsdtar (macOS, Windows) reads zip
       fi ;;
  esac || die "../$archive has no $name/$exe: refusing to install"
  [ "$got" = "$(sha256 <"$exe")" ] || die "$exe is not the one in ../$archive (which matches SHA256SUMS): refusing to install"
  echo "checksum verified: $archive matches SHA256SUMS and $exe matches the archive"
}

if [ ! -f go.mod ]; then verify; fi
mkdir -p "$bindir"
tmp=$(mktemp "$bindir/.git-credential-bbtoken.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if [ -f go.mod ]; then
  version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
  echo "building git-credential-bbtoken $version"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/bbtoken/git-credential-bbtoken/internal/cli.Version=$version" \
    -o "$tmp" ./cmd/git-credential-bbtoken
else
  cp "$exe" "$tmp"
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$bindir/$exe"   # atomic: a running git never sees half a binary
trap - EXIT
echo "installed $bindir/$exe ($("$bindir/$exe" version))"

# The man page, from the binary itself. Best effort: a prefix whose man
# folder is not writable still gets a working helper.
if mkdir -p "$mandir" 2>/dev/null && [ -w "$mandir" ] &&
  "$bindir/$exe" help --man >"$mandir/.git-credential-bbtoken.1.tmp" 2>/dev/null &&
  mv -f "$mandir/.git-credential-bbtoken.1.tmp" "$mandir/git-credential-bbtoken.1"; then
  echo "installed $mandir/git-credential-bbtoken.1"
else
  rm -f "$mandir/.git-credential-bbtoken.1.tmp" 2>/dev/null || true
  echo "note: man page not installed ($mandir is not writable); git-credential-bbtoken help shows the same text"
fi

"$bindir/$exe" setup "$@"

case ":$PATH:" in
  *":$bindir:"*) ;;
  *) echo "note: $bindir is not on your PATH; git finds the helper by its absolute path anyway, but add it to use the commands directly" ;;
esac
cat <<MSG
next: add a token (read from stdin or prompted for without echo), then clone:
  git-credential-bbtoken add https://bitbucket.org/WORKSPACE/REPO
  git clone https://bitbucket.org/WORKSPACE/REPO.git
MSG
