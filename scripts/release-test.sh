#!/usr/bin/env bash
# The release end to end with the real tools (.ci/run runs it, as root):
# scripts/release.sh for a test version, twice (byte-identical); checksums;
# each archive's layout; the binary's version; install.sh from an extracted
# archive with no Go on PATH, and its refusals; the .deb installed with
# dpkg -i, serving `git credential fill` after setup, and removed by dpkg -r
# without a trace. Every git config it writes is under a throw-away HOME.
# Needs what release.sh needs, unzip, and root for dpkg -i (without root
# the .deb is only inspected). Leaves dist/ in the tree and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.0.0-test
name=git-credential-bbtoken
arch=$(dpkg --print-architecture)
nogo=/usr/bin:/bin # a PATH without Go (which lives in /usr/local/go or ~/go)
tmp=$(mktemp -d)
installed=
cleanup() {
  if [ -n "$installed" ]; then dpkg -r "$name" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1" >&2; exit 1; }
# tree lists what git sees in the work tree, ignored files too, but dist/.
tree() { git status --porcelain --ignored --untracked-files=all | grep -v '^.. dist/' || true; }
before=$(tree)
start=$SECONDS

# release.sh LOG: runs scripts/release.sh, showing its log on failure.
release() {
  local t=$SECONDS
  scripts/release.sh "$version" >"$tmp/$1" 2>&1 || { cat "$tmp/$1"; fail "scripts/release.sh $version"; }
  echo "     (scripts/release.sh took $((SECONDS - t)) s)"
}

release release1.log
files=("${name}_${version}_amd64.deb" "${name}_${version}_arm64.deb")
for t in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do files+=("${name}_${version}_$t.tar.gz"); done
for t in windows_amd64 windows_arm64; do files+=("${name}_${version}_$t.zip"); done
want=$(printf '%s\n' "${files[@]}" | LC_ALL=C sort)
[ "$(cd dist && LC_ALL=C ls)" = "$(printf '%s\nSHA256SUMS' "$want" | LC_ALL=C sort)" ] || fail "dist/ holds: $(ls dist)"
ok "dist/ holds the 8 release files and SHA256SUMS"
(cd dist && sha256sum --strict -c SHA256SUMS >/dev/null) || fail "sha256sum -c SHA256SUMS"
[ "$(awk '{ print $2 }' dist/SHA256SUMS | LC_ALL=C sort)" = "$want" ] || fail "SHA256SUMS lists: $(cat dist/SHA256SUMS)"
ok "sha256sum -c SHA256SUMS passes and covers every file"

cp -a dist "$tmp/first"
release release2.log
diff -r "$tmp/first" dist >/dev/null || fail "a second run gave other bytes: $(diff "$tmp/first/SHA256SUMS" dist/SHA256SUMS)"
ok "a second run is byte-identical"

if scripts/release.sh '1.0 beta' >"$tmp/bad.out" 2>"$tmp/bad.err"; then fail "release.sh took the version '1.0 beta'"; fi
[ "$(wc -l <"$tmp/bad.err")" = 1 ] && [ ! -s "$tmp/bad.out" ] || fail "a bad version: want one line on stderr: $(cat "$tmp/bad.out" "$tmp/bad.err")"
diff -r "$tmp/first" dist >/dev/null || fail "a refused version touched dist/"
ok "a bad version is refused with one line, dist/ untouched"

# Layout: one folder named like the archive; root-owned entries dated
# SOURCE_DATE_EPOCH.
epoch_date=$(TZ=UTC date -d "@$(git log -1 --format=%ct)" '+%Y-%m-%d %H:%M:%S')
for f in "${files[@]}"; do
  case $f in *.deb) continue ;; esac
  base=${f%.tar.gz} base=${base%.zip} exe=$name
  case $f in *windows*) exe=$name.exe ;; esac
  want_entries=$(printf '%s\n' "$base/" "$base/LICENSE" "$base/README.md" "$base/$exe" "$base/$name.1" "$base/install.sh" | LC_ALL=C sort)
  case $f in
    *.tar.gz)
      entries=$(tar -tzf "dist/$f" | LC_ALL=C sort)
      meta=$(TZ=UTC tar --numeric-owner --full-time -tvzf "dist/$f" | awk '{ print $2, $4, $5 }' | sort -u)
      [ "$meta" = "0/0 $epoch_date" ] || fail "$f: owners and dates: $meta" ;;
    *) entries=$(unzip -Z1 "dist/$f" | LC_ALL=C sort) ;;
  esac
  [ "$entries" = "$want_entries" ] || fail "$f holds: $entries"
done
ok "each archive holds one folder with the binary, install.sh, README.md, LICENSE and the man page"

# The host's archive, downloaded with SHA256SUMS beside it and extracted.
base=${name}_${version}_linux_$arch
mkdir "$tmp/dl"
cp "dist/$base.tar.gz" dist/SHA256SUMS "$tmp/dl/"
tar -xzf "$tmp/dl/$base.tar.gz" -C "$tmp/dl"
[ "$("$tmp/dl/$base/$name" version)" = "$name $version" ] || fail "version: $("$tmp/dl/$base/$name" version)"
ok "the linux/$arch binary from its archive prints $version"

if PATH=$nogo command -v go >/dev/null; then fail "go is on $nogo: cannot test install.sh without Go"; fi
# install_from DIR PREFIX HOME [ARGS]: install.sh from DIR with Go off PATH and
# nothing else from this environment (no D-Bus session, no real HOME).
install_from() {
  local dir=$1 prefix=$2 home=$3
  shift 3
  mkdir -p "$home"
  env -i HOME="$home" XDG_CONFIG_HOME="$home/.config" PATH="$nogo" PREFIX="$prefix" "$dir/install.sh" "$@"
}
install_from "$tmp/dl/$base" "$tmp/prefix" "$tmp/home" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "install.sh from the archive"; }
grep -q '^checksum verified' "$tmp/install.log" || fail "install.sh did not verify: $(cat "$tmp/install.log")"
[ "$("$tmp/prefix/bin/$name" version)" = "$name $version" ] || fail "installed binary's version"
helpers=$(HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config git config --global --get-all credential.https://bitbucket.org.helper)
[ "$helpers" = "$(printf '\n%s' "$tmp/prefix/bin/$name")" ] || fail "setup's helpers: $helpers"
[ -f "$tmp/prefix/share/man/man1/$name.1" ] || fail "install.sh installed no man page"
if command -v man >/dev/null; then
  # man finds pages beside the bin folders on PATH.
  [ "$(env -i PATH="$tmp/prefix/bin:$nogo" man -w "$name")" = "$tmp/prefix/share/man/man1/$name.1" ] || fail "man -w $name after install.sh"
fi
install_from "$tmp/dl/$base" "$tmp/prefix" "$tmp/home" --host https://bb.example.com >"$tmp/install2.log" 2>&1 || { cat "$tmp/install2.log"; fail "install.sh, rerun with --host"; }
helpers=$(HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config git config --global --get-all credential.https://bitbucket.org.helper)
[ "$helpers" = "$(printf '\n%s' "$tmp/prefix/bin/$name")" ] || fail "rerun: setup's helpers: $helpers"
HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config git config --global --get-all credential.https://bb.example.com.helper | grep -qx "$tmp/prefix/bin/$name" ||
  fail "install.sh --host: no helper for bb.example.com"
ok "install.sh from the archive, without Go: verifies, installs binary and man page, runs setup; reruns with setup's arguments"

# No SHA256SUMS beside the folder: installs, saying the checksum was not
# verified; and a man folder that cannot be made is no reason to fail.
mkdir -p "$tmp/bare" "$tmp/prefix-bare"
cp -a "$tmp/dl/$base" "$tmp/bare/"
touch "$tmp/prefix-bare/share"
install_from "$tmp/bare/$base" "$tmp/prefix-bare" "$tmp/home-bare" >"$tmp/bare.log" 2>&1 || { cat "$tmp/bare.log"; fail "install.sh without SHA256SUMS"; }
grep -q '^checksum not verified' "$tmp/bare.log" || fail "without SHA256SUMS: $(cat "$tmp/bare.log")"
grep -q '^note: man page not installed' "$tmp/bare.log" && [ -x "$tmp/prefix-bare/bin/$name" ] || fail "unwritable man folder: $(cat "$tmp/bare.log")"
ok "install.sh without SHA256SUMS installs and says the checksum was not verified; no man folder is no failure"

# refused DIR WHAT: install.sh from DIR fails with one line and installs nothing.
refused() {
  local out=$tmp/refused.out err=$tmp/refused.err
  rm -rf "$tmp/prefix-x" "$tmp/home-x"
  if install_from "$1" "$tmp/prefix-x" "$tmp/home-x" >"$out" 2>"$err"; then fail "install.sh installed $2"; fi
  [ "$(wc -l <"$err")" = 1 ] && grep -q 'refusing to install' "$err" || fail "$2: want one line: $(cat "$out" "$err")"
  [ ! -e "$tmp/prefix-x/bin/$name" ] && [ ! -e "$tmp/home-x/.gitconfig" ] || fail "$2: something was installed"
}
mkdir "$tmp/tampered"
cp "dist/$base.tar.gz" dist/SHA256SUMS "$tmp/tampered/"
tar -xzf "$tmp/tampered/$base.tar.gz" -C "$tmp/tampered"
printf 'x' >>"$tmp/tampered/$base/$name"
refused "$tmp/tampered/$base" "a tampered binary"
mkdir "$tmp/badsum"
cp "dist/$base.tar.gz" "$tmp/badsum/"
sed "s/^[0-9a-f]\{64\}  $base.tar.gz\$/$(printf '0%.0s' $(seq 64))  $base.tar.gz/" dist/SHA256SUMS >"$tmp/badsum/SHA256SUMS"
tar -xzf "$tmp/badsum/$base.tar.gz" -C "$tmp/badsum"
refused "$tmp/badsum/$base" "an archive that does not match SHA256SUMS"
ok "install.sh refuses a tampered binary and an archive not matching SHA256SUMS, with one line"

# The .deb.
deb=dist/${name}_${version}_$arch.deb
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = "$name" ] && [ "$(field Version)" = "$version" ] && [ "$(field Architecture)" = "$arch" ] &&
  [ "$(field Depends)" = git ] && field Recommends | grep -q 'gnome-keyring' || fail "control: $(dpkg-deb -f "$deb")"
dpkg-deb -e "$deb" "$tmp/control"
[ "$(cd "$tmp/control" && ls)" = "$(printf 'control\nmd5sums')" ] || fail "control files: $(ls "$tmp/control")"
[ "$(dpkg-deb -c "$deb" | awk '{ print $2 }' | sort -u)" = root/root ] || fail "owners: $(dpkg-deb -c "$deb")"
ok "the .deb: control fields, no maintainer scripts, files owned by root"

if [ "$(id -u)" != 0 ]; then
  echo "skip dpkg -i/-r (needs root)"
else
  if dpkg-query -W -f='${db:Status-Abbrev}' "$name" 2>/dev/null | grep -q '^i'; then
    fail "$name is installed on this machine: not replacing it"
  fi
  etc_before=$(cat /etc/gitconfig 2>/dev/null | sha256sum)
  # Slim Debian images tell dpkg to drop man pages and docs
  # (/etc/dpkg/dpkg.cfg.d/): the package's own are tested regardless.
  dpkg --path-include="/usr/share/man/man1/$name.1.gz" --path-include="/usr/share/doc/$name/*" \
    -i "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i $deb"; }
  installed=1
  [ "$(/usr/bin/$name version)" = "$name $version" ] || fail "/usr/bin/$name version"
  [ "$(cat /etc/gitconfig 2>/dev/null | sha256sum)" = "$etc_before" ] || fail "dpkg -i changed /etc/gitconfig"
  if command -v man >/dev/null; then
    [ "$(man -w "$name")" = "/usr/share/man/man1/$name.1.gz" ] || fail "man -w $name: $(man -w "$name" 2>&1)"
    env -i PATH=$nogo HOME="$tmp" git help credential-bbtoken 2>&1 | grep -q 'scoped Bitbucket tokens' || fail "git help credential-bbtoken"
    ok "dpkg -i: man $name and git help credential-bbtoken show the page"
  else
    [ -f "/usr/share/man/man1/$name.1.gz" ] || fail "no man page installed"
    ok "dpkg -i installed the man page (man is not installed)"
  fi
  # deb CMD...: a user with a throw-away HOME runs CMD.
  h=$tmp/deb-home
  mkdir "$h"
  deb() { env -i HOME="$h" XDG_CONFIG_HOME="$h/.config" PATH="$nogo" GIT_TERMINAL_PROMPT=0 "$@"; }
  deb "$name" setup >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; fail "$name setup"; }
  deb "$name" add https://bitbucket.org/ws/repo --kind repository --from-env BBTOKEN_RELEASE_TEST_TOKEN >"$tmp/add.log" 2>&1 ||
    { cat "$tmp/add.log"; fail "$name add --from-env"; }
  token=ATCTT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTReleaseTest0123456789
  got=$(printf 'protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n' |
    deb BBTOKEN_RELEASE_TEST_TOKEN=$token git credential fill) || fail "git credential fill"
  grep -qx "password=$token" <<<"$got" || fail "git credential fill did not serve the token: $(sed 's/^password=.*/password=.../' <<<"$got")"
  ok "the installed package serves git credential fill after setup"

  dpkg -L "$name" >"$tmp/files"
  dpkg -r "$name" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -r $name"; }
  installed=
  # Without conffiles dpkg forgets the package at once (nothing to purge).
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$name" 2>/dev/null || true)
  case $status in "" | un*) ;; *) fail "after dpkg -r: dpkg's status is $status" ;; esac
  while IFS= read -r p; do
    [ "$p" = /. ] && continue
    [ -e "$p" ] || [ -L "$p" ] || continue
    # A folder that others own or use stays; anything else is a leftover.
    [ -d "$p" ] && { [ -n "$(ls -A "$p")" ] || dpkg -S "$p" >/dev/null 2>&1; } || fail "dpkg -r left $p"
  done <"$tmp/files"
  ! ls /var/lib/dpkg/info/"$name".* >/dev/null 2>&1 || fail "dpkg -r left $(ls /var/lib/dpkg/info/"$name".*)"
  ok "dpkg -r leaves nothing behind"
fi

[ "$(tree)" = "$before" ] || fail "the test changed the tree beyond dist/: $(diff <(echo "$before") <(tree))"
ok "nothing in the tree changed but dist/"
echo "release test: $passed passed, 0 failed ($((SECONDS - start)) s)"
