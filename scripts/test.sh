#!/usr/bin/env bash
# `npm test`: build, type-check, lint (ESLint and Prettier's check), then the whole suite twice: on
# SQLite files, and on PostgreSQL (a throwaway server from scripts/with-postgres.sh, unless
# PPN_TEST_DATABASE_URL names one).
set -euo pipefail
cd "$(dirname "$0")/.."

npm run build
npm run typecheck
npm run lint
echo "== the suite on SQLite"
npx vitest run
echo "== the suite on SQLite passed ($SECONDS s so far); the suite on PostgreSQL"
scripts/with-postgres.sh env PPN_TEST_STORE=postgres npx vitest run
