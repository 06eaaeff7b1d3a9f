"""The SSL context made from the `ssl_*` options, and, when none can be made,
which option is at fault and what to do: OpenSSL's own errors ("PEM lib")
name neither the file nor the fix."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cppcorn.config import Config


def create_ssl_context(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    password: str | None,
    ssl_version: int,
    cert_reqs: int,
    ca_certs: str | os.PathLike[str] | None,
    ciphers: str | None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl_version)
    context.load_cert_chain(certfile, keyfile, (lambda: password) if password else None)
    context.verify_mode = ssl.VerifyMode(cert_reqs)
    if ca_certs:
        context.load_verify_locations(ca_certs)
    if ciphers:
        context.set_ciphers(ciphers)
    return context


def ssl_options_error(config: Config, exc: OSError | ValueError) -> str:
        """Why the ssl_* options make no SSL context, naming the option at
        fault: OpenSSL's own errors ("PEM lib") do not say which file failed
        or what to do."""
        files = {"--ssl-certfile": config.ssl_certfile, "--ssl-keyfile": config.ssl_keyfile,
                 "--ssl-ca-certs": config.ssl_ca_certs}
        for option, path in files.items():
            if path is not None and not os.path.isfile(path):
                return f"{option} {os.fspath(path)}: no such file."
            if path is not None and not os.access(path, os.R_OK):
                return f"{option} {os.fspath(path)}: permission denied."
        # Each setting on its own, in the order create_ssl_context() uses them.
        checks: list[tuple[str, Any, Callable[[], object]]] = [
            ("--ssl-version", config.ssl_version, lambda: ssl.SSLContext(config.ssl_version)),
            ("--ssl-cert-reqs", config.ssl_cert_reqs, lambda: ssl.VerifyMode(config.ssl_cert_reqs)),
        ]
        if config.ssl_ca_certs:
            checks.append(("--ssl-ca-certs", config.ssl_ca_certs,
                           lambda: ssl.create_default_context(cafile=config.ssl_ca_certs)))
        if config.ssl_ciphers:
            checks.append(("--ssl-ciphers", config.ssl_ciphers,
                           lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(config.ssl_ciphers or "")))
        for option, value, check in checks:
            try:
                check()
            except (OSError, ValueError) as error:
                # SSLError("No cipher can be selected.") would print as a tuple.
                return f"{option} {value}: {error.args[0] if len(error.args) == 1 else error}"
        # Then it is the certificate and its key.
        certfile = os.fspath(config.ssl_certfile or "")
        keyfile = os.fspath(config.ssl_keyfile or certfile)
        if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
            return f"The private key in {keyfile} does not belong to the certificate in {certfile}."
        with open(keyfile, "rb") as file:
            key_pem = file.read()
        if b"ENCRYPTED" in key_pem and config.ssl_keyfile_password:
            return f"Cannot decrypt the private key in {keyfile}: --ssl-keyfile-password is not its password."
        if b"ENCRYPTED" in key_pem:
            return f"The private key in {keyfile} is encrypted: pass its password with --ssl-keyfile-password."
        if config.ssl_keyfile is None and b"PRIVATE KEY-----" not in key_pem:
            return f"--ssl-certfile {certfile} holds no private key: pass the key file with --ssl-keyfile."
        return (
            f"Cannot load the certificate {certfile} with the key {keyfile} ({exc}): --ssl-certfile and "
            f"--ssl-keyfile must be PEM files, the certificate (chain) and its private key."
        )
