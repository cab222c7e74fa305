"""The metrics endpoint: Prometheus text format checked by promtool on real
output, a liveness endpoint, counters that move with mail, and a real
Prometheus server scraping ringmta."""
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import free_port


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


@pytest.fixture
def msrv(make_server):
    port = free_port()
    srv = make_server(metrics_listen="127.0.0.1:%d" % port).start()
    srv.metrics_url = "http://127.0.0.1:%d" % port
    return srv


def test_healthz_and_404(msrv):
    status, _, body = get(msrv.metrics_url + "/healthz")
    assert status == 200 and body == "ok\n"
    with pytest.raises(urllib.error.HTTPError) as e:
        get(msrv.metrics_url + "/nope")
    assert e.value.code == 404


def test_promtool_accepts_output_and_counters_move(msrv):
    _, ctype, before = get(msrv.metrics_url + "/metrics")
    assert ctype.startswith("text/plain; version=0.0.4")
    r = subprocess.run(["promtool", "check", "metrics"], input=before, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert metric(before, "ringmta_messages_received_total") == 0
    with smtplib.SMTP("127.0.0.1", msrv.port, timeout=10) as s:
        for i in range(3):
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: m\r\n\r\nx\r\n")
        _, _, during = get(msrv.metrics_url + "/metrics")
        assert metric(during, 'ringmta_connections_open{listener="127.0.0.1:%d"}' % msrv.port) == 1
    _, _, after = get(msrv.metrics_url + "/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=after, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert metric(after, "ringmta_messages_received_total") == 3
    assert metric(after, 'ringmta_connections_accepted_total{listener="127.0.0.1:%d"}'
                  % msrv.port) == 1
    assert metric(after, 'ringmta_queue_messages{state="ready"}') == 3
    assert metric(after, "ringmta_queue_commits_total") >= 1
    assert metric(after, "ringmta_accept_to_reply_seconds_count") == 3
    assert metric(after, "ringmta_network_received_bytes_total") > 0
    assert metric(after, "ringmta_queue_oldest_message_age_seconds") >= 0
    assert metric(after, 'ringmta_tls_handshakes_total{direction="inbound"}') == 0
    assert metric(after, "ringmta_dns_lookups_total") == 0


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
def test_real_prometheus_scrapes_ringmta(msrv):
    d = tempfile.mkdtemp(prefix="ringmta-prom-")
    port = free_port()
    target = msrv.metrics_url.split("//")[1]
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: ringmta\n    static_configs:\n"
                "      - targets: ['%s']\n" % target)
    prom = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(d, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(d, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with smtplib.SMTP("127.0.0.1", msrv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: p\r\n\r\nx\r\n")
        url = "http://127.0.0.1:%d/api/v1/query?query=ringmta_messages_received_total" % port
        deadline = time.time() + 60
        value = None
        while time.time() < deadline:
            try:
                _, _, body = get(url)
                res = json.loads(body)["data"]["result"]
                if res:
                    value = float(res[0]["value"][1])
                    if value >= 1:
                        break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        assert value is not None and value >= 1, "Prometheus never saw the counter move"
    finally:
        prom.terminate()
        prom.wait(30)
        shutil.rmtree(d, ignore_errors=True)
