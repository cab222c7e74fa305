#!/usr/bin/env bash
# Installs what ringmta needs to build, run and be tested, from Debian 12's
# apt repositories only. Safe to run again: it installs only what is missing.
set -eu
build_pkgs="build-essential pkg-config meson ninja-build liburing-dev liblmdb-dev
  libjemalloc-dev libinih-dev android-libboringssl-dev libc-ares-dev libmicrohttpd-dev
  libpsl-dev publicsuffix libspf2-dev libopendmarc-dev libyaml-dev libpcre2-dev
  libjansson-dev libsystemd-dev
  python3"
# python3 runs conf/embed.py at build time (the built-in rules files).
# Installed with --no-install-recommends, so every package a test relies on
# is named here, Recommends included: swaks needs libnet-ssleay-perl and
# libio-socket-ssl-perl for --tls/--tlsc ("TLS not available: requires
# Net::SSLeay" otherwise) and libio-socket-inet6-perl for IPv6; testssl.sh
# calls dig (bind9-dnsutils) and hexdump (bsdextrautils); test_metrics runs
# prometheus and promtool (package prometheus). DKIM signatures are checked
# by dkimpy (python3-dkim, with python3-nacl for Ed25519 and python3-dnspython
# for its DNS) and OpenDKIM (opendkim-tools), run in a network namespace
# (iproute2) whose resolver is a dnsmasq on loopback. bench/dkim.sh runs OpenDKIM's
# milter (opendkim) as Postfix's signer, beside ringmta's own signing; the bench
# scripts count an MTA's system calls with perf stat (linux-perf). test_dist
# checks the unit with systemd-analyze (systemd) and renders the man pages
# with man -l (man-db) and groff (groff-base), and parses the logrotate
# example (logrotate). test_relay_auth runs a Postfix submission server with
# Cyrus SASL over a sasldb: saslpasswd2 (sasl2-bin), the PLAIN and LOGIN
# plugins (libsasl2-modules) and the sasldb plugin (libsasl2-modules-db);
# it starts Postfix under script (bsdutils) to see its start-up errors.
# test_inject and test_admin_api post with curl.
test_pkgs="clang libclang-rt-14-dev python3 python3-pytest python3-aiosmtpd swaks
  libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl
  postfix lmdb-utils procps dnsmasq-base prometheus testssl.sh bind9-dnsutils
  bsdextrautils openssl ca-certificates mount
  python3-dkim python3-nacl python3-dnspython opendkim-tools iproute2 util-linux
  opendkim linux-perf systemd man-db groff-base logrotate
  sasl2-bin libsasl2-modules libsasl2-modules-db bsdutils curl"
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
