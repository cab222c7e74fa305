#!/usr/bin/env bash
# Installs what ringmta needs to build, run and be tested, from Debian 12's
# apt repositories only. Safe to run again: it installs only what is missing.
set -eu
build_pkgs="build-essential pkg-config meson ninja-build liburing-dev liblmdb-dev
  libjemalloc-dev libinih-dev android-libboringssl-dev libc-ares-dev libmicrohttpd-dev"
test_pkgs="clang libclang-rt-14-dev python3 python3-pytest python3-aiosmtpd swaks
  postfix lmdb-utils procps dnsmasq-base prometheus testssl.sh openssl"
want="$build_pkgs"
[ "${1:-}" = "--test" ] && want="$build_pkgs $test_pkgs"
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix only provides smtp-source/smtp-sink for tests; keep it unconfigured.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
