"""The cluster's TLS material: a private CA and one server certificate signed by it.

Layout of ``DATA_DIR/tls/`` (made by ``ensure_certificates`` when the cluster is created,
never overwritten)::

    ca.crt       self-signed CA certificate (clients pin it: sslrootcert=DATA_DIR/tls/ca.crt)
    ca.key       the CA's private key (mode 0600; only needed to sign more certificates)
    server.crt   server certificate, signed by the CA; SAN = localhost, the cluster host,
                 127.0.0.1 and ::1, so sslmode=verify-full works on loopback too
    server.key   its private key (mode 0600)
    internal.crt the certificate every part presents on internal connections (mutual TLS,
                 ``storage.mtls``): CN ``borealis-internal``, client and server use
    internal.key its private key (mode 0600)

Keys are ECDSA P-256: quick to generate (no multi-second RSA key search at first start)
and accepted by libpq, psycopg and asyncpg.  Every instance of the cluster presents the
same server certificate, so a client's pinned CA works whichever instance an endpoint
routes it to.  The endpoint proxy relays TLS bytes untouched: TLS runs end to end between
client and instance.

``server_context(data_dir)`` returns an ``ssl.SSLContext`` for the pg-wire server, or
None when the cluster has no certificate (then SSLRequest is answered 'N').
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from storage.mtls import INTERNAL_CERT, INTERNAL_CN, INTERNAL_KEY

TLS_DIR = "tls"
CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"
VALID_DAYS = 3650


def tls_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / TLS_DIR


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ensure_certificates(data_dir: str | Path, host: str = "127.0.0.1") -> bool:
    """Create the CA and server certificate unless ``server.crt`` exists, and the internal
    certificate unless it exists.  Returns True when it created the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = tls_dir(data_dir)
    if (d / SERVER_CERT).exists() and (d / SERVER_KEY).exists():
        ensure_internal_certificate(data_dir, host)  # a cluster made before internal TLS
        return False
    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Borealis cluster CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(host), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    nopw = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    _write_private(d / CA_KEY, ca_key.private_bytes(pem, pkcs8, nopw))
    _write_private(d / SERVER_KEY, key.private_bytes(pem, pkcs8, nopw))
    (d / CA_CERT).write_bytes(ca_cert.public_bytes(pem))
    (d / SERVER_CERT).write_bytes(cert.public_bytes(pem))
    ensure_internal_certificate(data_dir, host)
    return True


def _san(host: str) -> "x509.SubjectAlternativeName":
    from cryptography import x509

    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    ips = {"127.0.0.1", "::1"}
    try:
        ips.add(str(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(ips)]
    return x509.SubjectAlternativeName(names)


def ensure_internal_certificate(data_dir: str | Path, host: str = "127.0.0.1") -> bool:
    """Sign the internal certificate (mutual TLS between the cluster's parts) with the
    cluster CA unless it exists.  Returns True when it made one; False when it exists or
    the CA key is absent (then only the CA's owner can make one)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = tls_dir(data_dir)
    if (d / INTERNAL_CERT).exists() and (d / INTERNAL_KEY).exists():
        return False
    if not ((d / CA_KEY).exists() and (d / CA_CERT).exists()):
        return False
    ca_key = serialization.load_pem_private_key((d / CA_KEY).read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((d / CA_CERT).read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, INTERNAL_CN)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(host), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = serialization.Encoding.PEM
    _write_private(d / INTERNAL_KEY, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    tmp = d / (INTERNAL_CERT + ".tmp")
    tmp.write_bytes(cert.public_bytes(pem))
    os.replace(tmp, d / INTERNAL_CERT)
    return True


def server_context(data_dir: str | Path) -> ssl.SSLContext | None:
    """The pg-wire server's TLS context (TLS 1.2+), or None without a certificate."""
    d = tls_dir(data_dir)
    cert, key = d / SERVER_CERT, d / SERVER_KEY
    if not (cert.exists() and key.exists()):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx
