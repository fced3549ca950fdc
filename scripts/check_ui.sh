#!/usr/bin/env bash
# The UI path in a real browser: runs the demo and `smsc-dagster dev` in a temporary DAGSTER_HOME, drives the
# Dagster UI in headless Chromium (asset graph, the history asset's columns and plots, the demo's run on the
# job's page, a three-day backfill launched from the Materialize dialog), and saves screenshots to ui-check/.
# Needs the venv (`make install`), Node.js with npm, and Debian's chromium (`apt-get install chromium`).
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "check_ui: no Chromium at $CHROMIUM: install Debian's package (apt-get install chromium) or set CHROMIUM" >&2
    exit 1
fi
if ! command -v npm >/dev/null; then
    echo "check_ui: Node.js and npm are needed (apt-get install nodejs npm)" >&2
    exit 1
fi
# playwright-core only, pinned by the lock file: it drives the system Chromium and downloads no browser.
npm ci --prefix scripts/browser --no-audit --no-fund --loglevel=error >/dev/null
exec node scripts/browser/check_ui.mjs "$@"
