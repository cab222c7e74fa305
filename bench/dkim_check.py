#!/usr/bin/python3
"""dkim_check.py - checks the DKIM signatures of messages for bench/dkim.sh
(system python3 with dkimpy: python3-dkim, and python3-nacl for Ed25519).

  dkim_check.py DNSFILE WANT MSG...

Verifies every DKIM-Signature of each message with dkimpy, the key records taken from
DNSFILE (lines "NAME TXT-VALUE", e.g. "rsa1._domainkey.bench.test v=DKIM1; k=rsa; p=..."),
never from DNS. WANT: the algorithms each message must carry, valid, e.g.
"rsa-sha256,ed25519-sha256". A message may have LF or CRLF line ends (Postfix's smtp-sink
-d writes LF and puts its own X-Client-* and Received fields on top: they are not signed).
Prints one line per message; exits 0 when every message has a valid signature for each
algorithm in WANT and no invalid one, 1 otherwise, 2 on usage errors.
"""
import sys


def main(dnsfile, want, msgs):
    import dkim

    keys = {}
    for line in open(dnsfile):
        if line.strip():
            name, txt = line.split(None, 1)
            keys[name.rstrip(".").lower()] = txt.strip().encode()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return keys.get(name.rstrip(".").lower())

    want = [w for w in want.split(",") if w]
    bad = 0
    for path in msgs:
        data = open(path, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        d = dkim.DKIM(data)
        sigs = [v for k, v in dkim.rfc822_parse(data)[0] if k.lower() == b"dkim-signature"]
        res = []
        for i, sig in enumerate(sigs):
            tags = dict(t.strip().split(b"=", 1) for t in sig.split(b";") if b"=" in t)
            alg = b"".join(tags.get(b"a", b"?").split()).decode()
            sel = b"".join(tags.get(b"s", b"?").split()).decode()
            canon = b"".join(tags.get(b"c", b"simple/simple").split()).decode()
            try:
                ok = d.verify(idx=i, dnsfunc=dnsfunc)
            except dkim.DKIMException as e:
                ok = False
                print(f"  {path}: signature {i}: {e}")
            res.append((alg, f"{sel} c={canon}", ok))
        have = {a for a, _, ok in res if ok}
        good = all(ok for _, _, ok in res) and all(w in have for w in want)
        bad += not good
        print(f"{'ok ' if good else 'BAD'} {path}: " +
              (", ".join(f"{a} s={s} {'valid' if ok else 'INVALID'}" for a, s, ok in res)
               or "no DKIM-Signature"))
    return 1 if bad or not msgs else 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
