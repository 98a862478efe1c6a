"""Certificates for the TLS tests, made fresh by each run with the
`cryptography` package: a CA, a server certificate for 127.0.0.1 and
localhost, client certificates signed by the CA, and a foreign CA with a
client of its own (which the servers must not trust). Written as PEM files
(key and chain in one file, as ZooKeeper's PEM key store reads them) and as
PKCS12 key stores."""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSWORD = "changeit"


def _name(cn, ou="test", o="Paddock"):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject, key, issuer, issuer_key, ca, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
            x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


LOCAL_SANS = (x509.DNSName("localhost"),
              x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")))


class Certs:
    """Files under `dir`: attributes name their paths."""

    def __init__(self, dir):
        os.makedirs(dir, exist_ok=True)
        self.dir = dir
        ca_key = _key()
        ca = _cert(_name("Paddock Test CA", ou="ca"), ca_key, _name("Paddock Test CA", ou="ca"),
                   ca_key, True)
        foreign_key = _key()
        foreign = _cert(_name("Foreign CA", o="Elsewhere"), foreign_key,
                        _name("Foreign CA", o="Elsewhere"), foreign_key, True)
        self.ca = self._write("ca.pem", _pem_cert(ca))
        self.foreign_ca = self._write("foreign-ca.pem", _pem_cert(foreign))
        self.server_pem, self.server_p12 = self._leaf("server", _name("server"), ca, ca_key)
        self.client1_pem, _ = self._leaf("client1", _name("client1"), ca, ca_key)
        self.client2_pem, _ = self._leaf("client2", _name("client2"), ca, ca_key)
        self.foreign_pem, _ = self._leaf("foreign", _name("intruder", o="Elsewhere"), foreign,
                                         foreign_key)
        # Subjects as Java's X500Principal.getName() writes them.
        self.client1_dn = "CN=client1,OU=test,O=Paddock"
        self.client2_dn = "CN=client2,OU=test,O=Paddock"

    def _write(self, name, data):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def _leaf(self, name, subject, ca, ca_key):
        key = _key()
        cert = _cert(subject, key, ca.subject, ca_key, False, LOCAL_SANS)
        pem = self._write(name + ".pem", _pem_key(key) + _pem_cert(cert) + _pem_cert(ca))
        self._write(name + ".key", _pem_key(key))
        self._write(name + ".crt", _pem_cert(cert) + _pem_cert(ca))
        p12 = self._write(name + ".p12", pkcs12.serialize_key_and_certificates(
            name.encode(), key, cert, [ca],
            serialization.BestAvailableEncryption(PASSWORD.encode())))
        return pem, p12

    def client(self, name):
        """(certfile, keyfile) for kazoo."""
        return (os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key"))
