#!/usr/bin/env bash
# Builds git-credential-bbtoken, installs it (default ~/.local/bin; PREFIX
# changes the prefix: $PREFIX/bin) and runs `setup` so git uses it for
# https://bitbucket.org. Safe to rerun. Extra arguments go to setup, e.g.
#   ./install.sh --host https://bitbucket.example.com
set -euo pipefail
cd "$(dirname "$0")"

prefix=${PREFIX:-$HOME/.local}
bindir=$prefix/bin
command -v go >/dev/null || { echo "install.sh: Go 1.26 or newer is needed to build (https://go.dev/dl/)" >&2; exit 1; }
command -v git >/dev/null || { echo "install.sh: git is needed" >&2; exit 1; }

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
mkdir -p "$bindir"
tmp=$(mktemp "$bindir/.git-credential-bbtoken.XXXXXX")
trap 'rm -f "$tmp"' EXIT
echo "building git-credential-bbtoken $version"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/bbtoken/git-credential-bbtoken/internal/cli.Version=$version" \
  -o "$tmp" ./cmd/git-credential-bbtoken
chmod 0755 "$tmp"
mv -f "$tmp" "$bindir/git-credential-bbtoken"   # atomic: a running git never sees half a binary
trap - EXIT
echo "installed $bindir/git-credential-bbtoken"

"$bindir/git-credential-bbtoken" setup "$@"

case ":$PATH:" in
  *":$bindir:"*) ;;
  *) echo "note: $bindir is not on your PATH; git finds the helper by its absolute path anyway, but add it to use the commands directly" ;;
esac
cat <<MSG
next: add a token (read from stdin or prompted for without echo), then clone:
  git-credential-bbtoken add https://bitbucket.org/WORKSPACE/REPO
  git clone https://bitbucket.org/WORKSPACE/REPO.git
MSG
