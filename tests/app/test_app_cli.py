"""python app.py as staff start it: flags, and no exposed address without a login."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import bind_problem, is_loopback
from core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def run_app(*args, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMBUDS_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_help_lists_the_flags():
    result = run_app("--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--index-dir", "--chroma-url", "--llm"):
        assert flag in result.stdout


def test_exposed_address_without_login_refuses_to_start(tmp_path):
    result = run_app("--host", "0.0.0.0", "--index-dir", str(tmp_path / "none"), "--log-dir", str(tmp_path / "l"))
    assert result.returncode == 2
    assert "Refusing to listen on 0.0.0.0" in result.stderr
    assert "OMBUDS_AUTH_USERNAME" in result.stderr and "OMBUDS_AUTH_PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "l").exists()  # refused before anything was opened or written


def test_half_configured_login_refuses_to_start(tmp_path):
    result = run_app("--index-dir", str(tmp_path / "none"), env_extra={"OMBUDS_AUTH_USERNAME": "staff"})
    assert result.returncode == 2 and "Set both OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD" in result.stderr


def test_missing_index_is_a_clear_error(tmp_path):
    result = run_app("--index-dir", str(tmp_path / "none"), "--log-dir", str(tmp_path / "l"), "--port", "1")
    assert result.returncode == 2
    assert "python -m ingest" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_exposed_address_with_login_is_allowed(tmp_path):
    settings = load_settings(host="0.0.0.0", auth_username="staff", auth_password="s3cret", index_dir=tmp_path)
    assert bind_problem(settings) is None
    assert bind_problem(load_settings(host="0.0.0.0", index_dir=tmp_path)) is not None
