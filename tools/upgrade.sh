#!/usr/bin/env bash
# `make upgrade`: refresh the locked dependencies within the ranges declared in
# pyproject.toml and package.json, print what changed, then run the audits and the tests.
# Review the printed changes, record them in CHANGELOG.md and commit uv.lock and
# package-lock.json together (docs/operations/maintenance.md, "Update management").
#   SKIP_TESTS=1 make upgrade     refresh, print and audit only
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.tools/bin/uv}
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
cp uv.lock "$before/uv.lock"
cp package-lock.json "$before/package-lock.json"

echo "== uv lock --upgrade (Python, within pyproject.toml's ranges)"
"$UV" lock --upgrade
echo "== npm update (browser bundle, within package.json's ranges)"
npm update --no-audit --no-fund --loglevel=error

echo "== what changed"
python3 tools/lock_diff.py "$before/uv.lock" uv.lock | tee "$before/changes.txt"
python3 tools/lock_diff.py "$before/package-lock.json" package-lock.json | tee -a "$before/changes.txt"

echo "== install the new versions and rebuild the bundle"
"$UV" sync --frozen
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build

status=0
echo "== audits (.ci/audit)"
audit=0
.ci/audit || audit=$?
if [ $audit -eq 1 ]; then
  status=1  # known vulnerabilities in the new versions
elif [ $audit -ne 0 ]; then
  echo "NOT AUDITED: an audit could not run (rc $audit); run .ci/audit where the advisory services are reachable" >&2
  [ "${WAYMARK_AUDIT:-report}" = required ] && status=$audit
fi
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== tests"
  .venv/bin/python -m pytest -q -p no:cacheprovider || status=$?
fi
echo "== summary"
cat "$before/changes.txt"
if [ $status -ne 0 ]; then
  echo "UPGRADE NOT READY: audits or tests failed (rc $status); keep the old lock files with" \
       "'git checkout uv.lock package-lock.json' or fix what failed" >&2
fi
exit $status
