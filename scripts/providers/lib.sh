# Shared parts of the provider scripts (sourced by bash). Each
# scripts/providers/PROVIDER.sh starts one Secret Service provider headless
# in a private D-Bus session, waits until it really serves (its name owned
# and its collection unlocked), runs CMD ARGS... and reports whether the
# provider survived. CMD sees:
#   BBTOKEN_TEST_PROVIDER   keepassxc | kwallet
#   SS_PROVIDER_PID, SS_PROVIDER_LOG, SS_COLLECTION, SS_WORKDIR
#   DBUS_SESSION_BUS_ADDRESS (the private bus)
# Exit: CMD's status, or 99 when CMD passed but the provider died.
# SS_KEEP=1 keeps the throw-away directory; SS_READY_TIMEOUT (seconds, 30);
# SS_EXPECT_DEATH=1: CMD kills the provider on purpose.

# ss_bus_config: a session bus configuration without service activation
# (a call to org.freedesktop.secrets must never start another provider
# behind the one under test). scripts/test.sh uses it too.
ss_bus_config() {
  cat <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <limit name="max_completed_connections">100000</limit>
  <limit name="max_connections_per_user">100000</limit>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
}

# ss_enter_bus SCRIPT ARGS...: re-exec SCRIPT under a private bus
# (ss_bus_config) unless already inside one.
ss_enter_bus() {
  if [ -z "${SS_INNER:-}" ]; then
    export SS_INNER=1
    local conf rc=0
    conf=$(mktemp -t ss-bus.XXXXXX)
    ss_bus_config >"$conf"
    dbus-run-session --config-file="$conf" -- bash "$@" || rc=$?
    rm -f "$conf"
    exit $rc
  fi
  unset SS_INNER
}

ss_has_owner() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:"$1" 2>/dev/null | grep -q 'boolean true'
}

# ss_locked PATH: true or false (nothing when it cannot be read).
ss_locked() {
  dbus-send --session --print-reply --reply-timeout=2000 --dest=org.freedesktop.secrets "$1" \
    org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null |
    sed -n 's/.*boolean \(true\|false\).*/\1/p'
}

ss_alive() { kill -0 "$SS_PROVIDER_PID" 2>/dev/null; }

# ss_stop PID: TERM, up to 5 s, then KILL.
ss_stop() {
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# ss_wait_ready NAME [locked|unlock]: wait until the provider owns the
# Secret Service name and SS_COLLECTION reads unlocked; with "locked", a
# collection that reads locked is ready too (KWallet shows every new
# client its open wallet as locked); with "unlock", ask it to unlock
# (KWallet: its Unlock prompt completes without a dialog).
ss_wait_ready() {
  local deadline=$(($(date +%s) + ${SS_READY_TIMEOUT:-30})) p
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ss_has_owner org.freedesktop.secrets; then
      case "$(ss_locked "$SS_COLLECTION")" in
        false) echo "ss: $1 ready" >&2; return 0 ;;
        true) if [ "${2:-}" = locked ]; then echo "ss: $1 ready (collection reads locked)" >&2; return 0; fi
          if [ "${2:-}" = unlock ]; then
            p=$(dbus-send --session --print-reply --reply-timeout=2000 --dest=org.freedesktop.secrets /org/freedesktop/secrets \
              org.freedesktop.Secret.Service.Unlock array:objpath:"$SS_COLLECTION" 2>/dev/null |
              sed -n 's/.*object path "\(.*prompt.*\)"/\1/p' || true)
            [ -z "$p" ] || dbus-send --session --print-reply --reply-timeout=2000 --dest=org.freedesktop.secrets "$p" \
              org.freedesktop.Secret.Prompt.Prompt string:"" >/dev/null 2>&1 || true
          fi ;;
      esac
    fi
    ss_alive || { echo "ss: $1 died while starting:"; tail -20 "$SS_PROVIDER_LOG"; return 1; } >&2
    sleep 0.05
  done
  { echo "ss: $1 did not become ready:"; tail -20 "$SS_PROVIDER_LOG"; } >&2
  return 1
}

# ss_run CMD...: run the command, then report on the provider.
ss_run() {
  export BBTOKEN_TEST_PROVIDER SS_PROVIDER_PID SS_PROVIDER_LOG SS_COLLECTION SS_WORKDIR
  local rc=0
  "$@" || rc=$?
  if ss_alive || [ -n "${SS_EXPECT_DEATH:-}" ]; then return $rc; fi
  { echo "ss: $BBTOKEN_TEST_PROVIDER DIED under the tests; its log ends:"; tail -n 30 "$SS_PROVIDER_LOG" | sed 's/^/  | /'; } >&2
  [ $rc -ne 0 ] && return $rc
  return 99
}
