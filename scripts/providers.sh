#!/usr/bin/env bash
# The provider-neutral suites against the Secret Service providers other
# than gnome-keyring (which scripts/test.sh runs everything against): the
# backend's behaviour suite, the store's suites, and the end-to-end load,
# kill -9, clone/push and install tests, each provider headless in a
# private D-Bus session (scripts/providers/PROVIDER.sh); then, in a fresh
# instance, the provider killed under load (TestProviderDiesUnderLoad).
#   scripts/providers.sh [PROVIDER...]     (default: keepassxc kwallet)
# A provider that is not installed is skipped, or fails the run when
# BBTOKEN_REQUIRE_PROVIDERS=1 (as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- keepassxc kwallet
e2e='^(TestParallelProcesses|TestCrashDuringWrites|TestCrashAtEveryStep|TestMostSpecificTokenServes|TestNoTokenFailsWithoutPrompting|TestRevokedRepositoryToken|TestRejectedWorkspaceTokenRevivedAtPrompt|TestWorkspaceTokenRejectedForOneRepository|TestRemembersCredentialGitApproved|TestPushWithReadOnlyToken|TestConcurrentGitProcesses|TestNewcomerInstall|TestProcWorkflowWithRealKeyring)$'
status=0
for p in "$@"; do
  case "$p" in
    keepassxc) bin=keepassxc ;;
    kwallet) bin=kwalletd5 ;;
    *) echo "unknown provider $p (keepassxc, kwallet)" >&2; exit 2 ;;
  esac
  if ! command -v "$bin" >/dev/null 2>&1; then
    if [ "${BBTOKEN_REQUIRE_PROVIDERS:-}" = 1 ]; then echo "== $p: $bin is not installed" >&2; status=1; continue; fi
    echo "== $p: skipped ($bin is not installed; see .ci/run)"
    continue
  fi
  echo "== go test against $p"
  BBTOKEN_REQUIRE_KEYRING=1 scripts/providers/$p.sh bash -c '
    rc=0
    go test -count=1 ./internal/secrets/secretservice -run "^(TestSuiteReal|TestReadsWhatOlderVersionsWrote)$" || rc=1
    go test -count=1 ./internal/store || rc=1
    go test -count=1 ./e2e -run "$1" || rc=1
    exit $rc' _ "$e2e" || status=1
  # Last, in an instance of its own: the provider killed under load.
  BBTOKEN_REQUIRE_KEYRING=1 BBTOKEN_TEST_KILL_PROVIDER=1 SS_EXPECT_DEATH=1 scripts/providers/$p.sh \
    go test -count=1 ./e2e -run '^TestProviderDiesUnderLoad$' || status=1
done
exit $status
