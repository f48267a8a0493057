#!/usr/bin/env bash
# Install the Debian packages the test rig (tests/rig/) needs, only those whose binaries are missing.
#
#   scripts/install-test-deps.sh          # as root: apt-get install what is missing (idempotent, quiet if all there)
#   scripts/install-test-deps.sh --check  # only list what is missing; exit 1 if anything is
#
# Not root: prints what is missing and how to install it, exits 0 (the tests then skip those servers, or fail
# with CI=true). Postfix is preseeded to "No configuration", and the package scripts are kept from starting
# the system Dovecot/Postfix (the rig runs its own private instances on free ports).
set -euo pipefail

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

# binary (command name or absolute path) -> Debian package
declare -A needs=(
  [/usr/sbin/dovecot]=dovecot-imapd
  [/usr/lib/dovecot/imap]=dovecot-imapd
  [/usr/lib/dovecot/lmtp]=dovecot-lmtpd
  [/usr/sbin/postfix]=postfix
  [dnsmasq]=dnsmasq-base
  [/usr/lib/chromium/chromium]=chromium
  [openssl]=openssl
  [redis-server]=redis-server
  [docker-compose]=docker-compose
  [script]=bsdutils
)

have() {
  if [[ "$1" == /* ]]; then [[ -x "$1" ]]; else PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; fi
}

missing=()
add() { [[ " ${missing[*]-} " == *" $1 "* ]] || missing+=("$1"); }
for binary in "${!needs[@]}"; do
  have "$binary" || add "${needs[$binary]}"
done
# PostgreSQL keeps initdb off PATH, in /usr/lib/postgresql/<version>/bin.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! have initdb; then
  add postgresql
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi

if ((check_only)) || [[ $(id -u) -ne 0 ]]; then
  echo "test rig: missing Debian packages: ${missing[*]}"
  echo "  install them with: sudo $0    (or: sudo apt-get install --no-install-recommends ${missing[*]})"
  ((check_only)) && exit 1
  exit 0
fi

if [[ " ${missing[*]} " == *" postfix "* ]]; then
  # No /etc/postfix/main.cf, no system mail server: the rig writes its own configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi

# Keep maintainer scripts from starting system daemons (dovecot would take ports 143/993) while we install.
guard=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  guard=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\n# temporary, from %s\nexit 101\n' "$0" >"$guard"
  chmod 755 "$guard"
  trap 'rm -f "$guard"' EXIT
fi

echo "test rig: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# The packages enable their services for the next boot; the rig never wants the system Dovecot/Postfix.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
  for unit in dovecot postfix; do
    if [[ " ${missing[*]} " == *" ${unit}"* ]]; then
      systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    fi
  done
fi
echo "test rig: done"
