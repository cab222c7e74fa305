"""The receive-buffer limits hold for TLS sessions too: decrypted input
is taken from the same pool, so a small pool must still leave room for
it."""
import smtplib
import ssl

from pki import Pki


def test_tls_session_with_small_pool(make_server):
    pki = Pki()
    crt, key = pki.leaf("mx.test.invalid", ["DNS:mx.test.invalid", "IP:127.0.0.1"])
    srv = make_server(tls_cert_file=crt, tls_key_file=key, recv_buffers_max=64).start()
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.check_hostname = False
    body = "Subject: tls\r\n\r\n" + "".join("tls line %04d\r\n" % i for i in range(3000))
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client.test")
        c.starttls(context=ctx)
        c.ehlo("client.test")
        assert c.sendmail("a@example.org", ["b@example.org"], body) == {}
    ids = srv.queue_ids()
    assert len(ids) == 1
    assert "tls line 2999" in srv.queue_show(ids[0])
