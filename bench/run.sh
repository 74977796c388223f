#!/usr/bin/env bash
# The benchmark: git-credential-bbtoken against git-credential-libsecret and
# git credential-store, on one machine, in one run, against the same
# gnome-keyring unlocked in a private D-Bus session; then get alone against
# KeePassXC and KWallet when they are installed (scripts/providers/), and
# get of env and pass entries with no D-Bus at all (pass, gpg).
#
#   bench/run.sh            full run (about 10 minutes with a cached keyring;
#                           the first run seeds 10,000 keyring items, which
#                           gnome-keyring makes slow): writes bench/RESULTS.md
#   bench/run.sh --smoke    short run (CI, < 2 minutes): writes a temp file and
#                           fails only if something fails to run, never on a
#                           missed target
#
# Extra arguments go to the driver (bench/cmd/bbbench), e.g. --runs 50,
# --scales 1,100,1000, --out FILE.
# Environment: BBBENCH_CACHE keeps seeded keyrings between runs (default
# ~/.cache/git-credential-bbtoken-bench; set it empty to disable).
# Needs (Debian): golang, git, dbus, gnome-keyring, gcc, make, pkg-config,
# libsecret-1-dev.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ -z "${BBBENCH_IN_SESSION:-}" ]; then
  missing=()
  for tool in go git gcc make pkg-config dbus-run-session gnome-keyring-daemon; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  pkg-config --exists libsecret-1 glib-2.0 2>/dev/null || missing+=("libsecret-1 (libsecret-1-dev)")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: missing: ${missing[*]}" >&2
    echo "install: apt-get install git dbus gnome-keyring gcc make pkg-config libsecret-1-dev" >&2
    exit 1
  fi
  smoke=
  for a in "$@"; do [ "$a" = --smoke ] && smoke=1; done
  work=$(mktemp -d "${TMPDIR:-/tmp}/bbbench.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/bin" "$work/home"

  echo "== building git-credential-bbtoken from $repo (as install.sh builds it)"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/bin/git-credential-bbtoken" ./cmd/git-credential-bbtoken
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/bin/gohello" ./bench/cmd/gohello
  go build -o "$work/bin/bbbench" ./bench/cmd/bbbench
  gcc -O2 -Wall -o "$work/bin/rss" bench/rss.c

  echo "== building git-credential-libsecret from git's contrib source"
  src=/usr/share/doc/git/contrib/credential/libsecret
  [ -d "$src" ] || { echo "bench/run.sh: $src not found (Debian's git package ships it)" >&2; exit 1; }
  cp -r "$src" "$work/libsecret"
  # Debian compresses larger doc files; the source may be a .c.gz.
  for gz in "$work"/libsecret/*.gz; do [ -e "$gz" ] && gunzip -f "$gz"; done
  make -s -C "$work/libsecret" >/dev/null
  [ -x "$work/libsecret/git-credential-libsecret" ] || { echo "bench/run.sh: libsecret helper did not build" >&2; exit 1; }

  out="$repo/bench/RESULTS.md"
  [ -n "$smoke" ] && out="$work/RESULTS.md"
  prev=
  for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
  cache=${BBBENCH_CACHE-${XDG_CACHE_HOME:-$HOME/.cache}/git-credential-bbtoken-bench}
  [ -n "$smoke" ] && cache=   # CI: nothing kept, nothing trusted

  echo "== running (private D-Bus session, throw-away HOME; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  # A private session bus and a throw-away HOME: the keyring daemon (also
  # when D-Bus activates one), git and the helpers see nothing of the user's.
  status=0
  env -u XDG_RUNTIME_DIR BBBENCH_IN_SESSION=1 HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" \
    XDG_CONFIG_HOME="$work/home/.config" XDG_CACHE_HOME="$work/home/.cache" \
    GNOME_KEYRING_CONTROL= \
    dbus-run-session -- "$repo/bench/run.sh" --work "$work" --repo "$repo" --out "$out" --cache "$cache" \
      --bbtoken "$work/bin/git-credential-bbtoken" --libsecret "$work/libsecret/git-credential-libsecret" --rss "$work/bin/rss" --gohello "$work/bin/gohello" \
      "$@" || status=$?
  # get on the other Secret Service providers, each started headless by
  # its script in a private session of its own; appended to the report.
  for p in keepassxc kwallet; do
    [ $status -eq 0 ] || break
    case $p in keepassxc) bin=keepassxc ;; kwallet) bin=kwalletd5 ;; esac
    if ! command -v "$bin" >/dev/null 2>&1; then echo "== $p: not installed, not measured"; continue; fi
    echo "== get on $p"
    mkdir -p "$work/$p/home"
    extra=()
    [ -n "$smoke" ] && extra+=(-smoke)
    env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS HOME="$work/$p/home" XDG_DATA_HOME="$work/$p/home/.local/share" \
      XDG_CONFIG_HOME="$work/$p/home/.config" XDG_CACHE_HOME="$work/$p/home/.cache" GNOME_KEYRING_CONTROL= \
      "$repo/scripts/providers/$p.sh" "$work/bin/bbbench" -provider "$p" -work "$work/$p" -out "$out" -repo "$repo" \
        -bbtoken "$work/bin/git-credential-bbtoken" -libsecret "$work/libsecret/git-credential-libsecret" -rss "$work/bin/rss" \
        "${extra[@]}" || status=$?
  done
  # get of env and pass entries with no D-Bus session at all.
  if [ $status -eq 0 ]; then
    if command -v pass >/dev/null 2>&1 && command -v gpg >/dev/null 2>&1; then
      echo "== get without a desktop (env and pass entries)"
      extra=()
      [ -n "$smoke" ] && extra+=(-smoke)
      env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS -u GNUPGHOME -u PASSWORD_STORE_DIR \
        "$work/bin/bbbench" -headless -work "$work" -out "$out" -repo "$repo" \
        -bbtoken "$work/bin/git-credential-bbtoken" -rss "$work/bin/rss" "${extra[@]}" || status=$?
    else
      echo "== pass or gpg not installed: env and pass entries not measured"
    fi
  fi
  if [ $status -eq 0 ] && [ -z "$smoke" ]; then echo "== results: $out"; fi
  if [ $status -eq 0 ] && [ -n "$smoke" ]; then
    cat "$out"
    echo "== smoke run ok (figures of a smoke run mean nothing; bench/RESULTS.md is not touched)"
  fi
  exit $status
fi

# Inside the private session: the driver starts and stops gnome-keyring itself.
args=()
for a in "$@"; do
  case "$a" in
    --smoke) args+=(-smoke) ;;
    --*) args+=("-${a#--}") ;;
    *) args+=("$a") ;;
  esac
done
work=
prev=
for a in "$@"; do [ "$prev" = --work ] && work=$a; prev=$a; done
exec "$work/bin/bbbench" "${args[@]}"
