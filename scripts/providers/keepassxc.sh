#!/usr/bin/env bash
# Run CMD ARGS... against KeePassXC's Secret Service integration, headless
# (QT_QPA_PLATFORM=offscreen), in a private D-Bus session: see lib.sh.
# Needs: keepassxc (2.7.4 on Debian bookworm), dbus, python3.
# Caveats of KeePassXC 2.7.4, which the helper's client respects:
#  - it exports its collection while the database is still locked, and a
#    call in that window waits on an unlock dialog nobody sees: ready means
#    Locked=false, not just the bus name;
#  - every CreateItem answers with a prompt (completed without a dialog);
#    replacing an item another connection created opens an invisible
#    "Access Request" dialog (its bug #9255): the helper never replaces;
#  - the collection is named after the database file (login.kdbx: login);
#  - "automatically save after every change" (its default) crashes it: it
#    saves on a worker thread while its main thread goes on serving D-Bus,
#    and a write served during the save (from any client: secret-tool one
#    at a time does it too) changes the entries being written out
#    (SIGSEGV in "Thread (pooled)"). No client can see the save over D-Bus,
#    so the tests run it with that setting off (SS_KPXC_AUTOSAVE=true turns
#    it back on); e2e's TestProviderDiesUnderLoad shows what the helper does
#    when a provider dies.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
ss_enter_bus "$0" "$@"

BBTOKEN_TEST_PROVIDER=keepassxc
SS_WORKDIR=$(mktemp -d -t kpxc-ss.XXXXXX)
W=$SS_WORKDIR
PW=test-password
KENV=(env HOME="$W/home" XDG_CONFIG_HOME="$W/home/.config" XDG_CACHE_HOME="$W/home/.cache"
  XDG_DATA_HOME="$W/home/.local/share" XDG_RUNTIME_DIR="$W/run" QT_QPA_PLATFORM=offscreen)
mkdir -p "$W/home/.config/keepassxc" "$W/home/.cache" "$W/home/.local/share" "$W/run"
chmod 700 "$W/run"
cat >"$W/home/.config/keepassxc/keepassxc.ini" <<INI
[General]
ConfigVersion=2
SingleInstance=false
RememberLastDatabases=false
RememberLastKeyFiles=false
AutoSaveAfterEveryChange=${SS_KPXC_AUTOSAVE:-false}
AutoReloadOnChange=false

[GUI]
CheckForUpdates=false
ShowTrayIcon=false
MinimizeOnStartup=false

[Browser]
Enabled=false

[SSHAgent]
Enabled=false

[FdoSecrets]
Enabled=true
ShowNotification=false
ConfirmDeleteItem=false
ConfirmAccessItem=false
UnlockBeforeSearch=false

[Security]
LockDatabaseIdle=false
LockDatabaseScreenLock=false
INI
# The group exposed over D-Bus is named in the database's
# Meta/CustomData (FDO_SECRETS_EXPOSED_GROUP), which keepassxc-cli cannot
# set: import a KeePass XML that has it. No recycle bin: a deleted item is
# gone.
ROOT_UUID=5ec7e75e-0000-4000-8000-000000000001
ROOT_UUID_B64=$(python3 -c "import uuid,base64,sys;print(base64.b64encode(uuid.UUID(sys.argv[1]).bytes).decode())" "$ROOT_UUID")
cat >"$W/db.xml" <<XML
<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<KeePassFile>
  <Meta>
    <Generator>KeePassXC</Generator>
    <DatabaseName>login</DatabaseName>
    <RecycleBinEnabled>False</RecycleBinEnabled>
    <CustomData>
      <Item><Key>FDO_SECRETS_EXPOSED_GROUP</Key><Value>{$ROOT_UUID}</Value></Item>
    </CustomData>
  </Meta>
  <Root>
    <Group>
      <UUID>$ROOT_UUID_B64</UUID>
      <Name>Root</Name>
    </Group>
  </Root>
</KeePassFile>
XML
printf '%s\n%s\n' "$PW" "$PW" | "${KENV[@]}" keepassxc-cli import -q -p -t 100 "$W/db.xml" "$W/login.kdbx" 2>"$W/import.log" ||
  { cat "$W/import.log" >&2; exit 1; }

SS_PROVIDER_LOG="$W/keepassxc.log"
printf '%s\n' "$PW" | "${KENV[@]}" keepassxc --pw-stdin "$W/login.kdbx" >"$SS_PROVIDER_LOG" 2>&1 &
SS_PROVIDER_PID=$!
cleanup() {
  ss_stop "$SS_PROVIDER_PID"
  if [ -n "${SS_KEEP:-}" ]; then echo "ss: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
SS_COLLECTION=/org/freedesktop/secrets/collection/login
ss_wait_ready keepassxc
rc=0
ss_run "$@" || rc=$?
exit $rc
