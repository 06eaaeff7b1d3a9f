"""Configuration errors, run as real processes: TLS options that do not make
an SSL context, a missing optional package (PyYAML, python-dotenv), and a
`--fd` that is not a listening socket. Each is a startup failure: exit
status 3 and one ERROR line that says what is wrong and what to do, without
a traceback (Uvicorn prints a traceback for each of them).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import posix_only
from tests.subprocesses import PROCESS_APPS, REPO_ROOT, ServerProcess


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "apps.py").write_text(PROCESS_APPS)
    return workdir


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("ERROR:")]


def assert_startup_failure(returncode: int, stderr: str, message: str) -> None:
    """Exit status 3, `message` as the only ERROR line, no traceback, nothing served."""
    assert returncode == 3, stderr
    assert error_lines(stderr) == [f"ERROR:    {message}"]
    assert "Traceback" not in stderr
    assert "running on" not in stderr


# --- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files() -> Iterator[Path]:
    """A directory of PEM files: `cert.pem` with `key.pem`, the same key
    encrypted with "secret" (`encrypted-key.pem`), and `other-key.pem`, the
    key of another certificate."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        cert.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
        cert.private_key_pem.write_to_path(str(directory / "key.pem"))
        ca.issue_cert("other").private_key_pem.write_to_path(str(directory / "other-key.pem"))
        key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
        (directory / "encrypted-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        yield directory


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--ssl-certfile", "missing.pem", "--ssl-keyfile", "key.pem"],
            "--ssl-certfile {dir}/missing.pem: no such file.",
        ),
        (
            ["--ssl-keyfile", "key.pem"],
            "--ssl-keyfile needs --ssl-certfile, the certificate (chain) file that goes with it.",
        ),
        (
            ["--ssl-certfile", "cert.pem"],
            "--ssl-certfile {dir}/cert.pem holds no private key: pass the key file with --ssl-keyfile.",
        ),
        (
            ["--ssl-certfile", "cert.pem", "--ssl-keyfile", "encrypted-key.pem"],
            "The private key in {dir}/encrypted-key.pem is encrypted: pass its password with --ssl-keyfile-password.",
        ),
        (
            ["--ssl-certfile", "cert.pem", "--ssl-keyfile", "encrypted-key.pem", "--ssl-keyfile-password", "wrong"],
            "Cannot decrypt the private key in {dir}/encrypted-key.pem: --ssl-keyfile-password is not its password.",
        ),
        (
            ["--ssl-certfile", "cert.pem", "--ssl-keyfile", "other-key.pem"],
            "The private key in {dir}/other-key.pem does not belong to the certificate in {dir}/cert.pem.",
        ),
        (
            ["--ssl-certfile", "cert.pem", "--ssl-keyfile", "key.pem", "--ssl-ca-certs", "missing-ca.pem"],
            "--ssl-ca-certs {dir}/missing-ca.pem: no such file.",
        ),
        (
            ["--ssl-certfile", "cert.pem", "--ssl-keyfile", "key.pem", "--ssl-ciphers", "NO-SUCH-CIPHER"],
            "--ssl-ciphers NO-SUCH-CIPHER: No cipher can be selected.",
        ),
    ],
    ids=[
        "missing-certfile", "key-without-cert", "cert-without-key", "encrypted-key-without-password",
        "wrong-password", "key-of-another-cert", "missing-ca-certs", "unknown-ciphers",
    ],
)
def test_bad_tls_options_exit_3(run_cli, tls_files, options, message):
    """Each TLS mistake is named by its option, with what to do."""
    args = [f"{tls_files}/{value}" if value.endswith(".pem") else value for value in options]
    result = run_cli("apps:app", "--port", "0", *args)
    assert_startup_failure(result.returncode, result.stderr, message.format(dir=tls_files))


# --- Optional packages ----------------------------------------------------------------


@pytest.fixture
def without_package(workdir: Path) -> Callable[[str], dict[str, str]]:
    """`env = without_package("yaml")`: an environment in which importing
    that package fails, as if it were not installed."""

    def environment(name: str) -> dict[str, str]:
        blocked = workdir / "blocked"
        blocked.mkdir(exist_ok=True)
        (blocked / f"{name}.py").write_text(f"raise ImportError('No module named {name}')\n")
        return {"PYTHONPATH": f"{blocked}{os.pathsep}{REPO_ROOT}"}

    return environment


def test_yaml_log_config_without_pyyaml_exits_3(run_cli, workdir, without_package):
    """A `.yaml` log config without PyYAML: one line saying to install it
    (Uvicorn raises an ImportError with that advice)."""
    (workdir / "logging.yaml").write_text("version: 1\n")
    result = run_cli("apps:app", "--port", "0", "--log-config", "logging.yaml", env=without_package("yaml"))
    assert_startup_failure(
        result.returncode,
        result.stderr,
        "Install the PyYAML package or cppcorn[standard] to use `--log-config` with YAML files.",
    )


def test_env_file_without_python_dotenv_exits_3(run_cli, workdir, without_package):
    (workdir / "app.env").write_text("UVICORN_PORT=0\n")
    result = run_cli("apps:app", "--env-file", "app.env", env=without_package("dotenv"))
    assert_startup_failure(
        result.returncode, result.stderr, "Install the python-dotenv package or cppcorn[standard] to use `--env-file`."
    )


# --- --fd: what is not a listening socket -----------------------------------------------


@pytest.fixture
def descriptors(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """`fd = descriptors(kind)`: an open descriptor that is not a listening
    socket, closed at the end of the test."""
    opened: list[socket.socket | int] = []

    def make(kind: str) -> int:
        if kind == "regular file":
            fd = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT)
            opened.append(fd)
            return fd
        if kind == "pipe":
            read_end, write_end = os.pipe()
            opened.extend((read_end, write_end))
            return read_end
        if kind == "datagram socket":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
        elif kind == "unbound socket":
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:  # a connected socket: the client end of a loopback connection
            listener = socket.create_server(("127.0.0.1", 0))
            opened.append(listener)
            sock = socket.create_connection(listener.getsockname(), timeout=5)
        opened.append(sock)
        return sock.fileno()

    yield make
    for thing in opened:
        if isinstance(thing, int):
            os.close(thing)
        else:
            thing.close()


@posix_only
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("regular file", "it is a regular file, not a socket"),
        ("pipe", "it is a pipe, not a socket"),
        ("datagram socket", "it is not a stream socket (TCP or Unix stream)"),
        ("unbound socket", "it is a socket bound to no address"),
        ("connected socket", "it is a connected socket, not a listening one"),
    ],
)
def test_fd_that_is_not_a_listening_socket_exits_3(cppcorn_process, descriptors, kind, reason):
    fd = descriptors(kind)
    server: ServerProcess = cppcorn_process("apps:app", "--fd", str(fd), pass_fds=(fd,))
    returncode = server.wait_exit()
    assert_startup_failure(returncode, server.stderr, f"Cannot serve on file descriptor {fd}, given by --fd: {reason}.")


@posix_only
def test_fd_that_is_not_open_exits_3(run_cli):
    result = run_cli("apps:app", "--fd", "1000")
    assert_startup_failure(
        result.returncode,
        result.stderr,
        "Cannot serve on file descriptor 1000, given by --fd: it is not an open file descriptor (Bad file descriptor).",
    )


@posix_only
def test_fd_with_workers_checked_before_they_start(cppcorn_process, descriptors):
    """With `--workers`, the supervisor finds the bad descriptor itself,
    before any worker starts."""
    fd = descriptors("pipe")
    server = cppcorn_process("apps:app", "--fd", str(fd), "--workers", "2", pass_fds=(fd,))
    returncode = server.wait_exit()
    assert_startup_failure(
        returncode, server.stderr, f"Cannot serve on file descriptor {fd}, given by --fd: it is a pipe, not a socket."
    )
    assert "Started server process" not in server.stderr
