#!/usr/bin/env bash
# The main job end to end, on a fresh machine, in one command: a private
# keyring, a local Bitbucket-like HTTPS git server, a temporary HOME; add a
# repository token, clone and push through the helper; clean up.
# Needs go, git, dbus-run-session and gnome-keyring-daemon (see .ci/run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${BBTOKEN_DEMO_IN_SESSION:-}" ]; then
  export BBTOKEN_DEMO_IN_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  kill "${GNOME_KEYRING_PID:-}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build the helper and the demo server"
(cd "$root" && go build -o "$work/bin/git-credential-bbtoken" ./cmd/git-credential-bbtoken \
  && go build -o "$work/bin/fakebbd" ./internal/fakebb/fakebbd)

export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
git config --global user.name "Demo User"
git config --global user.email demo@example.com
git config --global init.defaultBranch main

step "start a private keyring (gnome-keyring, unlocked from stdin)"
# Not the desktop's keyring daemon: with GNOME_KEYRING_CONTROL inherited,
# gnome-keyring-daemon would talk to that one, and cleanup would stop it.
unset GNOME_KEYRING_CONTROL GNOME_KEYRING_PID
eval "$(printf 'demo-keyring-password' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL GNOME_KEYRING_PID
echo "Secret Service on $DBUS_SESSION_BUS_ADDRESS"

step "start a Bitbucket-like HTTPS git server with repository ws/demo"
# A throw-away token, made here and fed to the server on stdin (never argv).
token="ATCTT3xDEMO$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkfifo "$work/out"
printf '{"flavor":"cloud","repos":["ws/demo"],"tokens":[{"name":"demo-repo-token","secret":"%s","usernames":["x-token-auth"],"prefixes":["ws/demo"],"write":true}]}' "$token" \
  | "$work/bin/fakebbd" -dir "$work/server" >"$work/out" &
server_pid=$!
exec 3<"$work/out"
read -r url_line <&3; read -r ca_line <&3; read -r repo_line <&3
base=${url_line#URL=}; export GIT_SSL_CAINFO=${ca_line#CA=}; repo=${repo_line#REPO=}
echo "server $base, repository $repo"

step "git-credential-bbtoken setup --host $base --flavor cloud"
"$work/bin/git-credential-bbtoken" setup --host "$base" --flavor cloud

step "add the repository token (piped on stdin)"
printf '%s\n' "$token" | "$work/bin/git-credential-bbtoken" add "$repo"
"$work/bin/git-credential-bbtoken" list

step "git clone $repo"
git clone -q "$repo" "$work/clone"
echo "cloned: $(git -C "$work/clone" log --oneline -1)"

step "commit and git push"
echo "hello from the demo" > "$work/clone/DEMO.md"
git -C "$work/clone" add DEMO.md
git -C "$work/clone" commit -qm "demo commit"
git -C "$work/clone" push -q origin HEAD:main
echo "pushed: $(git -C "$work/clone" ls-remote origin refs/heads/main)"

step "done: the token never left the keyring except to go to $base"
