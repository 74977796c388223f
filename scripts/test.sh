#!/usr/bin/env bash
# The project's test command: static checks, a cross-platform build, then
# every test against a real Secret Service (gnome-keyring in a private D-Bus
# session, unlocked from stdin), real git and a local HTTPS git server.
# A full run (no arguments) then runs the provider-neutral suites against
# KeePassXC and KWallet too (scripts/providers.sh).
# Needs: go, git, dbus (dbus-run-session), gnome-keyring; keepassxc and
# kwalletd5 for the other providers. See .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${BBTOKEN_IN_SESSION:-}" ]; then
  echo "== gofmt"
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
  if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted"; exit 1; fi
  echo "== go vet"
  go vet ./...
  if command -v staticcheck >/dev/null 2>&1 || [ -x "$(go env GOPATH)/bin/staticcheck" ]; then
    echo "== staticcheck"
    "$(command -v staticcheck || echo "$(go env GOPATH)/bin/staticcheck")" ./...
  fi
  echo "== cross-platform build and vet, tests included (CGO_ENABLED=0)"
  for os in linux darwin windows; do CGO_ENABLED=0 GOOS=$os go build ./...; CGO_ENABLED=0 GOOS=$os go vet ./...; done
  export BBTOKEN_IN_SESSION=1
  # A session bus without service activation: if the test keyring daemon
  # dies, a client must not start another (locked) one behind our back;
  # internal/testkeyring restarts the unlocked one instead.
  bus_conf=$(mktemp)
  . scripts/providers/lib.sh
  ss_bus_config >"$bus_conf"
  exec dbus-run-session --config-file="$bus_conf" -- "$0" "$@"
fi

# Inside the private D-Bus session: a throw-away HOME for the keyring daemon.
export BBTOKEN_REQUIRE_KEYRING=1
keyring_home=$(mktemp -d)
trap 'kill "${GNOME_KEYRING_PID:-}" 2>/dev/null || true; rm -rf "$keyring_home"' EXIT
# In the foreground (in the background of this shell), so that what it
# logs (its own assertion failures) can be shown at the end.
keyring_log="$keyring_home/daemon.log"
# Never the desktop's keyring daemon (a developer's session exports its
# control directory): ours gets its own.
unset GNOME_KEYRING_CONTROL GNOME_KEYRING_PID
printf 'test-password' | HOME="$keyring_home" XDG_DATA_HOME="$keyring_home/.local/share" \
  gnome-keyring-daemon --foreground --unlock --components=secrets >"$keyring_home/daemon.env" 2>"$keyring_log" &
GNOME_KEYRING_PID=$!
for _ in $(seq 100); do grep -q GNOME_KEYRING_CONTROL "$keyring_home/daemon.env" 2>/dev/null && break; sleep 0.05; done
eval "$(cat "$keyring_home/daemon.env")"
export GNOME_KEYRING_CONTROL GNOME_KEYRING_PID
# gnome-keyring 42 can abort (a glib assertion) when a client is killed in
# the middle of a call, which the crash tests do on purpose: these let
# internal/testkeyring start it again the same way.
export BBTOKEN_TEST_KEYRING_HOME="$keyring_home" BBTOKEN_TEST_KEYRING_PASSWORD=test-password
if [ $# -eq 0 ]; then
  echo "== scripts/demo.sh (the quick start, end to end)"
  demo_log=$(mktemp)
  if ! env -u BBTOKEN_DEMO_IN_SESSION ./scripts/demo.sh >"$demo_log" 2>&1; then
    cat "$demo_log"; rm -f "$demo_log"; echo "demo failed"; exit 1
  fi
  grep -q "pushed:" "$demo_log" || { cat "$demo_log"; echo "demo did not push"; exit 1; }
  rm -f "$demo_log"
  echo "demo ok"
fi
echo "== go test (Secret Service at $DBUS_SESSION_BUS_ADDRESS)"
status=0
go test -count=1 "${@:-./...}" || status=$?
# On failure only (go test's summary closes the log of a passing run): what
# the keyring daemon said, in case it aborted under a test.
if [ $status -ne 0 ]; then
  if grep -q . "$keyring_log" 2>/dev/null; then
    echo "== the test keyring daemon logged (first daemon only; restarts are logged by the tests):"
    sort "$keyring_log" | uniq -c | sort -rn | head -20
  fi
  if ! kill -0 "$GNOME_KEYRING_PID" 2>/dev/null; then
    code=0; wait "$GNOME_KEYRING_PID" || code=$?
    echo "== the first test keyring daemon is gone (exit status $code)"
  fi
fi
# The other Secret Service providers, each in a session of its own, for a
# full run only.
if [ $# -eq 0 ]; then
  echo "== the other Secret Service providers (scripts/providers.sh)"
  env -u DBUS_SESSION_BUS_ADDRESS -u BBTOKEN_TEST_KEYRING_HOME -u BBTOKEN_TEST_KEYRING_PASSWORD \
    -u GNOME_KEYRING_CONTROL -u GNOME_KEYRING_PID scripts/providers.sh || status=1
fi
# The release end to end, for a full run only: archives, checksums,
# install.sh without Go, and (as root) the .deb installed and removed.
if [ $# -eq 0 ]; then
  echo "== release (scripts/release-test.sh)"
  env -u DBUS_SESSION_BUS_ADDRESS scripts/release-test.sh || status=1
fi
exit $status
