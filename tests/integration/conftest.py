"""Fixtures for the integration tests: one test PKI per run, and a fresh ternd per test module
(`server`) or per test (`fresh_server`), each with the accounts alice, bob and admin."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tern_harness import make_pki, start_server  # noqa: E402

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"}


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    make_pki(folder, hosts=("localhost", "example.test"))
    return folder


def _start(folder, pki, **kwargs):
    return start_server(folder, pki, PASSWORDS, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    srv = _start(tmp_path_factory.mktemp("tern"), pki)
    yield srv
    srv.check_clean_exit()


@pytest.fixture
def fresh_server(tmp_path, pki):
    srv = _start(tmp_path, pki)
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.check_clean_exit()
