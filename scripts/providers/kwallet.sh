#!/usr/bin/env bash
# Run CMD ARGS... against KWallet's Secret Service API (kwalletd5),
# headless, in a private D-Bus session: see lib.sh.
# Needs: libkf5wallet-bin (kwalletd5, KF 5.103 on Debian bookworm),
# libqca-qt5-2-plugins, dbus, python3.
# Caveats of kwalletd5 5.103:
#  - it is started as pam_kwallet5 starts it (--pam-login HASHFD SOCKETFD),
#    which opens the wallet 'kdewallet' with a pre-hashed key, no dialog;
#  - its Secret Service side lists wallets when it starts, so the first
#    start only creates the wallet file; the second serves it as the
#    collection 'kdewallet' (alias 'default');
#  - the collection reads Locked=true, although the wallet is open, until a
#    client calls Service.Unlock, whose prompt completes without a dialog
#    (the helper's client unlocks that way); GetSecrets of an item while it
#    reads locked returns an empty secret, no error (never read without
#    unlocking); never call Lock (Unlock then waits for a dialog);
#  - GetSecrets of an item that is gone fails with InvalidArgs ("Can't find
#    item at path ..."), not a Secret Service error.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
ss_enter_bus "$0" "$@"

BBTOKEN_TEST_PROVIDER=kwallet
SS_WORKDIR=$(mktemp -d -t kw-ss.XXXXXX)
W=$SS_WORKDIR
mkdir -p "$W/home/.config" "$W/home/.local/share" "$W/home/.cache" "$W/run"
chmod 700 "$W/run"
cat >"$W/home/.config/kwalletrc" <<'INI'
[Wallet]
Enabled=true
First Use=false
Default Wallet=kdewallet
Local Wallet=kdewallet
Use One Wallet=true
Prompt on Open=false
Leave Open=true
Close When Idle=false
Close on Screensaver=false
Launch Manager=false

[org.freedesktop.secrets]
apiEnabled=true
INI
# Exec kwalletd5 with the two descriptors pam_kwallet5 passes: a pipe
# holding the 64-byte wallet key, and a listening socket on which the
# session's environment (the bus address) is already queued.
cat >"$W/exec_kwalletd.py" <<'PY'
import os, socket, sys
wdir = sys.argv[1]
r, w = os.pipe()
os.write(w, b"\x42" * 64); os.close(w)
sockpath = os.path.join(wdir, "pam.sock")
if os.path.exists(sockpath): os.unlink(sockpath)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(sockpath); srv.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(sockpath)
c.sendall(("DBUS_SESSION_BUS_ADDRESS=%s\n" % os.environ["DBUS_SESSION_BUS_ADDRESS"]).encode()); c.close()
os.set_inheritable(r, True); os.set_inheritable(srv.fileno(), True)
h = wdir + "/home"
env = dict(os.environ, PAM_KWALLET5_LOGIN=sockpath, QT_QPA_PLATFORM="offscreen", HOME=h,
           XDG_CONFIG_HOME=h + "/.config", XDG_DATA_HOME=h + "/.local/share",
           XDG_CACHE_HOME=h + "/.cache", XDG_RUNTIME_DIR=wdir + "/run")
os.execvpe("kwalletd5", ["kwalletd5", "--pam-login", str(r), str(srv.fileno())], env)
PY
SS_PROVIDER_LOG="$W/kwalletd.log"
WALLET="$W/home/.local/share/kwalletd/kdewallet.kwl"

# First start: creates the wallet file.
python3 "$W/exec_kwalletd.py" "$W" </dev/null >"$W/kwalletd-create.log" 2>&1 &
first=$!
for _ in $(seq 1 200); do [ -s "$WALLET" ] && break; sleep 0.05; done
[ -s "$WALLET" ] || { echo "ss: kwalletd5 created no wallet:"; cat "$W/kwalletd-create.log"; exit 1; } >&2
for _ in $(seq 1 100); do ss_has_owner org.kde.kwalletd5 && break; sleep 0.05; done
ss_stop "$first"
for _ in $(seq 1 100); do ss_has_owner org.freedesktop.secrets || ss_has_owner org.kde.kwalletd5 || break; sleep 0.05; done

# Second start: the wallet is the collection 'kdewallet'.
python3 "$W/exec_kwalletd.py" "$W" </dev/null >"$SS_PROVIDER_LOG" 2>&1 &
SS_PROVIDER_PID=$!
cleanup() {
  ss_stop "$SS_PROVIDER_PID"
  if [ -n "${SS_KEEP:-}" ]; then echo "ss: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
SS_COLLECTION=/org/freedesktop/secrets/collection/kdewallet
# As in a desktop session, the collection reads locked to the helper until
# it unlocks it; SS_KW_UNLOCK=1 unlocks it first, as a client before it may.
if [ -n "${SS_KW_UNLOCK:-}" ]; then ss_wait_ready kwallet unlock; else ss_wait_ready kwallet locked; fi
rc=0
ss_run "$@" || rc=$?
exit $rc
