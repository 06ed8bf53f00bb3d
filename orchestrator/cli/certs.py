"""A trial's certificate authority: ``gridcoord certs --case CASE --out DIR``.

One CA per coordination trial (``DIR/ca.pem``, ``DIR/ca.key``) and one key + certificate per participant
(``DIR/ID.pem``, ``DIR/ID.key``): every operator of the case (``orchestrator.cli.serve.case_operators``), the
orchestrator, and optionally EV-booking clients (``client-1`` ...); for the transport case
(``nguyen-dupuis-ieee33``) the TNO and the orchestrator. The identity a server authorizes is
read from the certificate only: CN = the participant id, OU = its role (tso | dso | aggregator | tno |
orchestrator | client), SAN = DNS:<id> (the host name in deploy/compose and k8s, and the TLS target name
the orchestrator and a DSO check), DNS:localhost, IP:127.0.0.1. Keys are EC P-256 (written 0600); every
leaf certificate may be used as server and as client (EKU serverAuth + clientAuth) because a DSO is both.

This is a trial CA for a coordination experiment, not a production PKI: no revocation list, no
intermediate CA, the CA key lies next to the certificates (move it offline after issuing).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Roles a certificate can carry (OU). ``client`` may only book EV reservations (see core.tls.POLICY).
ROLES = ("tso", "dso", "aggregator", "tno", "orchestrator", "client")
ORCHESTRATOR_ID = "orchestrator"
TRIAL_ORG = "gridcoord trial"


class CertsError(ValueError):
    """The output directory or an argument is unusable; the message names the path or the value."""


@dataclass(frozen=True)
class Authority:
    """A CA certificate and its private key (in memory)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    """A participant's certificate and key (in memory)."""

    identity: str
    role: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(name: str = "gridcoord trial CA", *, days: int = 365, not_before: dt.datetime | None = None) -> Authority:
    """A self-signed CA (EC P-256) valid ``days`` days from ``not_before`` (default: 5 minutes ago, for clock skew)."""
    if days < 1:
        raise CertsError(f"days = {days}: a certificate must be valid for at least 1 day")
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRIAL_ORG),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Authority(cert, key)


def issue(ca: Authority, identity: str, role: str, *, days: int = 365, not_before: dt.datetime | None = None,
          extra_dns: tuple[str, ...] = ()) -> Issued:
    """A leaf certificate for ``identity`` with ``role`` in OU, signed by ``ca``.

    ``not_before`` in the past with a small ``days`` makes an expired certificate (tests)."""
    if role not in ROLES:
        raise CertsError(f"identity {identity!r}: role {role!r} is not one of {', '.join(ROLES)}")
    if not identity or not all(c.isalnum() or c in "-." for c in identity):
        raise CertsError(f"identity {identity!r}: use letters, digits, '-' and '.' (it is a DNS name in the SAN)")
    if days < 1:
        raise CertsError(f"days = {days}: a certificate must be valid for at least 1 day")
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRIAL_ORG),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                         x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    names: list[x509.GeneralName] = [x509.DNSName(identity), *(x509.DNSName(d) for d in extra_dns),
                                     x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Issued(identity, role, cert, key)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (a key is never world-readable, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode is masked by the umask; an existing file keeps its old mode


def write_identity(out: Path, issued: Issued) -> tuple[Path, Path]:
    """``out/ID.pem`` (0644) and ``out/ID.key`` (0600)."""
    cert_path, key_path = out / f"{issued.identity}.pem", out / f"{issued.identity}.key"
    _write(key_path, issued.key_pem(), 0o600)
    _write(cert_path, issued.cert_pem(), 0o644)
    return cert_path, key_path


def write_ca(out: Path, ca: Authority) -> tuple[Path, Path]:
    cert_path, key_path = out / "ca.pem", out / "ca.key"
    _write(key_path, _key_pem(ca.key), 0o600)
    _write(cert_path, ca.cert_pem(), 0o644)
    return cert_path, key_path


def load_ca(tls_dir: str | Path) -> Authority:
    """The CA of an existing trial directory (``ca.pem`` + ``ca.key``), to issue more certificates."""
    d = Path(tls_dir)
    try:
        cert = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertsError(f"{d}: no usable ca.pem/ca.key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertsError(f"{d / 'ca.key'}: not an EC key")
    return Authority(cert, key)


def participants(case: str, clients: int = 0) -> list[tuple[str, str]]:
    """(role, id) of everyone who gets a certificate: the case's operators, the orchestrator, ``clients`` clients."""
    from orchestrator.cli.serve import case_operators

    if clients < 0:
        raise CertsError(f"--clients = {clients}: must be >= 0")
    out = case_operators(case) + [("orchestrator", ORCHESTRATOR_ID)]
    return out + [("client", f"client-{i}") for i in range(1, clients + 1)]


def create_trial(case: str, out: str | Path, *, days: int = 365, clients: int = 0, force: bool = False) -> list[Path]:
    """Write a trial CA and every participant's key + certificate under ``out``; returns the files written.

    Refuses an existing non-empty directory unless ``force`` (an old CA's keys would otherwise mix with
    the new one's)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CertsError(f"--out {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CertsError(f"--out {str(out)!r} is not empty (it may hold another trial's CA); use --force to overwrite")
    people = participants(case, clients)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    ca = make_ca(days=days)
    written = list(write_ca(out, ca))
    for role, oid in people:
        written += write_identity(out, issue(ca, oid, role, days=days))
    return written
