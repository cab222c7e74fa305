"""The shaping rules files from the outside: --check reports every error as
file:line and fails, a good file passes, `ringmta shaping show` explains
the merged limits for a Gmail-like MX set and for a domain override, the
daemon refuses to start on a bad file, and SIGHUP swaps in a good file
(logged with its counts) or keeps the old rules on a bad one, without
dropping a session."""
import os
import re
import signal
import subprocess
import tempfile

from conftest import BIN, wait_log

GOOD = """\
default:
  max_connections: 7
providers:
  gmail:
    max_connections: 4
    automation:
      - name: local-gmail-extra
        match: 'slow down'
        actions: [{suspend: 5m}]
sites:
  .l.google.com:
    message_rate: "50/s burst 10"
domains:
  special.example:
    max_connections: 2
    tls: required
sources:
  s1:
    address: 127.0.0.2
    ehlo: s1.test.invalid
    idle_timeout: 4s
    warmup: {start: 2099-01-01, schedule: {gmail: [10, 20]}}
"""

# Four mistakes on four lines, and a second file with one more.
BAD = """\
default:
  max_conections: 3
  message_rate: 100/fortnight
automation:
  - name: broken
    match: '(unclosed'
    actions: [{suspend: 1m}]
pools:
  p1: {sources: [nosuch]}
"""
BAD2 = """\
sources:
  s9: {address: 999.1.1.1}
"""


def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run(*args):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=30)


def test_check_reports_every_error_with_file_and_line():
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "bad.yaml", BAD)
        bad2 = write(d, "bad2.yaml", BAD2)
        r = run("-o", "shaping_rules=%s %s" % (bad, bad2), "-o", "queue_dir=%s/q" % d, "--check")
        assert r.returncode != 0
        lines = r.stderr.strip().split("\n")
        want = [
            "%s:2: unknown key \"max_conections\"" % bad,
            "%s:3: message_rate: not a rate" % bad,
            "%s:6: match: bad pattern at offset 9: missing closing parenthesis" % bad,
            "%s:9: pool p1: unknown source \"nosuch\"" % bad,
            "%s:2: address: \"999.1.1.1\" is not an IPv4 or IPv6 address" % bad2,
        ]
        for w in want:
            assert any(l.startswith(w) for l in lines), (w, r.stderr)
        assert len(lines) == len(want), r.stderr
        assert "valid" not in r.stdout


def test_check_passes_a_good_file_and_the_builtin_rules():
    with tempfile.TemporaryDirectory() as d:
        good = write(d, "good.yaml", GOOD)
        r = run("-o", "shaping_rules=" + good, "-o", "queue_dir=%s/q" % d, "--check")
        assert r.returncode == 0, r.stderr
        assert "valid" in r.stdout
        assert re.search(r"shaping rules: \d+ providers, 1 sites, 1 domains, 1 sources, 1 pools",
                         r.stdout), r.stdout
        r = run("-o", "shaping_builtin_rules=no", "-o", "queue_dir=%s/q" % d, "--check")
        assert r.returncode == 0, r.stderr
        r = run("-o", "shaping_rules=%s/missing.yaml" % d, "-o", "queue_dir=%s/q" % d, "--check")
        assert r.returncode != 0 and "%s/missing.yaml:0: No such file" % d in r.stderr


def show_fields(out):
    """{field: (value, origin)} from the limits table of `shaping show`."""
    fields = {}
    for m in re.finditer(r"^  (\w+) +(.+?)  +(.+)$", out.split("limits:\n", 1)[1], re.M):
        fields[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return fields


def test_shaping_show_gmail_like_mx_set():
    with tempfile.TemporaryDirectory() as d:
        good = write(d, "good.yaml", GOOD)
        r = run("-o", "shaping_rules=" + good, "shaping", "show",
                "--mx", "ASPMX.L.GOOGLE.COM.,alt1.aspmx.l.google.com")
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "site: alt1.aspmx.l.google.com,aspmx.l.google.com\n" in out, out
        assert "provider: gmail\n" in out and "site entry: l.google.com\n" in out, out
        f = show_fields(out)
        assert f["max_connections"] == ("4", "provider gmail (%s:5)" % good), f
        assert f["message_rate"] == ("50/s burst 10", "site l.google.com (%s:12)" % good), f
        assert f["max_recipients"][0] == "100" and f["max_recipients"][1].startswith(
            "provider gmail (<built-in>:"), f
        assert f["tls"] == ("may (smtp_tls_policy)", "ringmta.conf"), f
        # The shipped Gmail rules, then the file's, then the global ones.
        rules = out.split("automation rules, in the order they are tried:\n", 1)[1]
        names = re.findall(r"^  (\S+) \(", rules, re.M)
        assert names[0] == "gmail-4.7.28-unusual-rate", names
        assert names.index("local-gmail-extra") < names.index("too-many-connections"), names


def test_shaping_show_domain_override_and_source():
    with tempfile.TemporaryDirectory() as d:
        good = write(d, "good.yaml", GOOD)
        r = run("-o", "shaping_rules=" + good, "shaping", "show", "--mx", "mx.special.example",
                "--domain", "Special.Example", "--source", "s1")
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "site: Special.Example (the domain is a site of its own)" in out, out
        assert "provider: (none)" in out
        f = show_fields(out)
        assert f["max_connections"] == ("2", "domain special.example (%s:15)" % good), f
        assert f["tls"] == ("required", "domain special.example (%s:16)" % good), f
        assert f["idle_timeout"] == ("4s", "source s1 (%s:21)" % good), f
        assert "source: s1\n  address 127.0.0.2, ehlo s1.test.invalid\n  warm-up: uncapped here" \
            in out, out
        # Before the schedule's start the first day's cap applies.
        r = run("-o", "shaping_rules=" + good, "shaping", "show", "--mx", "aspmx.l.google.com",
                "--source", "s1")
        assert r.returncode == 0, r.stderr
        assert "  warm-up: at most 10 messages to gmail in the day from " in r.stdout, r.stdout
        # default: max_connections would be 7 without the domain entry.
        r = run("-o", "shaping_rules=" + good, "shaping", "show", "--mx", "mx.other.example")
        assert show_fields(r.stdout)["max_connections"] == ("7", "default (%s:2)" % good)
        # An unknown source, a bad file: exit 2 with the reason.
        r = run("-o", "shaping_rules=" + good, "shaping", "show", "--mx", "a.example",
                "--source", "s7")
        assert r.returncode == 2 and "no source \"s7\"" in r.stderr
        bad = write(d, "bad.yaml", BAD)
        r = run("-o", "shaping_rules=" + bad, "shaping", "show", "--mx", "a.example")
        assert r.returncode == 2 and "%s:2: unknown key" % bad in r.stderr
        # -o after the verb applies too; a bad one is refused.
        r = run("shaping", "show", "--mx", "a.example", "-o", "shaping_rules=" + bad)
        assert r.returncode == 2 and "%s:2: unknown key" % bad in r.stderr
        r = run("shaping", "show", "--mx", "a.example", "-o", "no_such_key=1")
        assert r.returncode == 2 and "no_such_key" in r.stderr


def test_daemon_refuses_to_start_with_a_bad_rules_file(make_server):
    d = tempfile.mkdtemp(prefix="ringmta-rules-")
    try:
        bad = write(d, "bad.yaml", BAD)
        srv = make_server(shaping_rules=bad)
        try:
            srv.start(timeout=10)
            started = True
        except RuntimeError:
            started = False
        assert not started, "ringmta started with a bad rules file"
        assert srv.proc.returncode != 0
        log = srv.read_log()
        assert "shaping rules: %s:2: unknown key" % bad in log, log
        assert "shaping rules: %s:6: match: bad pattern" % bad in log, log
        assert "not starting" in log
    finally:
        subprocess.run(["rm", "-rf", d])


def test_sighup_keeps_old_rules_on_error_and_takes_good_ones(make_server, raw_factory):
    d = tempfile.mkdtemp(prefix="ringmta-rules-")
    try:
        path = write(d, "rules.yaml", GOOD)
        srv = make_server(shaping_rules=path).start()
        assert re.search(r"shaping rules loaded: \d+ providers, 1 sites, 1 domains, 1 sources",
                         srv.read_log()), srv.read_log()
        c = raw_factory(srv.port)
        assert c.cmd("EHLO client.test.invalid")[-1][:3] == "250"

        write(d, "rules.yaml", BAD)
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: shaping rules not reloaded \(keeping the old rules\)")
        log = srv.read_log()
        assert "reload: shaping rules: %s:2: unknown key \"max_conections\"" % path in log, log
        assert "reload: shaping rules: %s:9: pool p1: unknown source" % path in log, log
        assert srv.proc.poll() is None, "a bad reload must not stop ringmta"
        assert c.cmd("NOOP")[-1][:3] == "250", "the session survives the failed reload"

        write(d, "rules.yaml", GOOD.replace(
            "domains:\n", "domains:\n  extra.example: {}\n  more.example: {}\n"))
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: shaping rules reloaded: \d+ providers, 1 sites, 3 domains"), \
            srv.read_log()
        assert c.cmd("NOOP")[-1][:3] == "250", "the session survives the reload"
        assert c.cmd("QUIT")[-1][:3] == "221"
    finally:
        subprocess.run(["rm", "-rf", d])
