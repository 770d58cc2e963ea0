#!/usr/bin/env bash
# The README's first command. On Debian 12 with nothing but this repository (Debian's
# minimal images ship no compiler and no make) it installs what is missing, the build
# tools included (scripts/install-deps.sh says what and why), then `make run`: builds
# argon and boots the default guest. Needs only bash and apt, and root while anything
# is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/install-deps.sh build
exec make --no-print-directory -j"$(nproc)" run
