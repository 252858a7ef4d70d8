"""Throwaway TLS material for the benchmark scripts: a CA and a certificate for 127.0.0.1 it
signed, made with openssl (P-256, valid two days)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_test_certs(d: Path) -> tuple[Path, Path, Path]:
    """Writes them under `d`; returns (CA certificate, server certificate, server key)."""
    d.mkdir(parents=True, exist_ok=True)

    def ossl(*a: str) -> None:
        subprocess.run(["openssl", *a], check=True, timeout=30, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-days", "2",
         "-subj", "/CN=bench CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "gw.key"), "-out", str(d / "gw.csr"), "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ossl("x509", "-req", "-in", str(d / "gw.csr"), "-CA", str(d / "ca.crt"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
         "-extfile", str(d / "ext.cnf"), "-out", str(d / "gw.crt"))
    return d / "ca.crt", d / "gw.crt", d / "gw.key"
