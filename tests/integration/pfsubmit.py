"""Postfix as a submission server for outbound AUTH tests: a Postfix instance
of its own (postfix -c DIR, its own queue, loopback ports only; the rig's
global instance is not touched) with Cyrus SASL over a sasldb (Debian's
sasl2-bin makes it with saslpasswd2; libsasl2-modules has PLAIN and LOGIN,
libsasl2-modules-db the sasldb plugin). Three smtpd services:

  starttls_port  STARTTLS, AUTH PLAIN and LOGIN only inside TLS
  implicit_port  TLS from the first byte (smtpd_tls_wrappermode, as 465)
  login_port     STARTTLS, AUTH offering LOGIN only

Relaying needs AUTH (permit_sasl_authenticated, nothing else); what is
accepted goes on to relay_port (a test sink). Needs root."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import free_port

REALM = "submission.test"


def usable():
    return (os.geteuid() == 0 and shutil.which("postfix") is not None and
            shutil.which("saslpasswd2") is not None and shutil.which("script") is not None)


class PostfixSubmission:
    def __init__(self, relay_port, user, password, cert, key):
        self.dir = tempfile.mkdtemp(prefix="ringmta-pfsub-")
        os.chmod(self.dir, 0o755)       # Postfix's daemons run as postfix
        self.relay_port = relay_port
        self.user, self.password = user, password
        self.cert, self.key = cert, key
        self.starttls_port, self.implicit_port, self.login_port = (free_port(), free_port(),
                                                                   free_port())
        self.app = "ringmta-test"
        self.etc = os.path.join(self.dir, "etc")
        self.maillog = os.path.join(self.dir, "maillog")

    def _write(self):
        d = self.dir
        for sub in ("etc", "etc/sasl", "spool", "data"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        shutil.chown(os.path.join(d, "data"), "postfix")
        # Debian's Postfix reads Cyrus's config from $config_directory/sasl.
        db = os.path.join(d, "etc", "sasl", "sasldb2")
        with open(os.path.join(d, "etc", "sasl", self.app + ".conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\nsasldb_path: %s\n" % db)
        login, _, realm = self.user.partition("@")
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", db, "-u", realm, login],
                       input=self.password.encode(), check=True, timeout=30)
        shutil.chown(db, "postfix")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
myhostname = {realm}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = {d}/spool
data_directory = {d}/data
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{relay}
mynetworks =
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = {app}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_tls_security_level = none
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
""".format(realm=REALM, d=d, relay=self.relay_port, app=self.app, cert=self.cert,
                   key=self.key))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("""127.0.0.1:{s} inet n - n - 5 smtpd
127.0.0.1:{i} inet n - n - 5 smtpd -o smtpd_tls_wrappermode=yes
127.0.0.1:{l} inet n - n - 5 smtpd -o smtpd_sasl_mechanism_filter=login
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
""".format(s=self.starttls_port, i=self.implicit_port, l=self.login_port))

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=10):
        """Whether text shows in the log within timeout seconds. Postfix's
        daemons log through postlogd (a datagram to another process), so a
        line can land after the reply it belongs to has been read."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return text in self.log()

    def __enter__(self):
        self._write()
        # "postfix start" reports a configuration error only on a terminal.
        r = subprocess.run(["script", "-qc", "postfix -c %s start" % self.etc, "/dev/null"],
                           capture_output=True, text=True, timeout=60)
        deadline = time.time() + 20
        while time.time() < deadline:
            if "daemon started" in self.log():
                break
            time.sleep(0.05)
        else:
            self.__exit__()
            raise RuntimeError("postfix did not start: %s%s%s" % (r.stdout, r.stderr, self.log()))
        for port in (self.starttls_port, self.implicit_port, self.login_port):
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        pidfile = os.path.join(self.dir, "spool", "pid", "master.pid")
        pid = None
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                pid = int(f.read().strip() or 0) or None
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)
        deadline = time.time() + 15
        while pid is not None and os.path.exists("/proc/%d" % pid) and time.time() < deadline:
            time.sleep(0.05)
        subprocess.run(["rm", "-rf", self.dir])
        return False
