#!/usr/bin/env bash
# The README's second command. On Debian 12 with nothing but this repository it
# installs what is missing, the build tools included (scripts/install-deps.sh says what
# and why), then `make test`: builds everything and runs every test, unit and
# end-to-end. Needs only bash and apt, and root (the tests create taps and namespaces).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/install-deps.sh build test
exec make --no-print-directory -j"$(nproc)" test
