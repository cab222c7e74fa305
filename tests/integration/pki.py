"""A throwaway PKI for TLS tests, made with the openssl command-line tool:
a CA, and leaf certificates for given names, signed by it."""
import os
import subprocess
import tempfile


def _run(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=60)


class Pki:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ringmta-pki-")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.ca = os.path.join(self.dir, "ca.pem")
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
             "-subj", "/CN=ringmta test CA")

    def leaf(self, name, sans):
        """Key and certificate files for CN=name with the given SAN entries."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % ",".join(sans))
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=%s" % name)
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
             "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
        return crt, key
