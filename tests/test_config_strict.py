"""Config that cannot lie: every case below is refused by `vha check-config` with exit 2 and a
line naming the file and the key, and all the errors of a file come out in one run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vha.cli import main

VC = "  - {name: a, url: 'https://a.example/sdk', user: u, password_env: VHA_TEST_PW}\n"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VHA_TEST_PW", "s3cret-value")


def check(tmp_path: Path, text: str | bytes, *extra: str) -> tuple[int, str]:
    f = tmp_path / "c.yml"
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "vha.cli", "check-config", *extra, str(f)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def vc_line(**fields: str) -> str:
    base = {
        "name": "a",
        "url": "'https://a.example/sdk'",
        "user": "u",
        "password_env": "VHA_TEST_PW",
    }
    base.update(fields)
    return "  - {" + ", ".join(f"{k}: {v}" for k, v in base.items()) + "}\n"


CASES = [
    ("sync:\n  max_wait_seconds: .nan\n", "sync.max_wait_seconds", "finite"),
    ("sync:\n  backoff_max_seconds: .inf\n", "sync.backoff_max_seconds", "finite"),
    ("vcenters:\n" + vc_line(timeout_seconds=".nan"), "vcenters[0].timeout_seconds", "finite"),
    (
        "vcenters:\n" + VC + "remediator:\n  auth: none\n  host_failure: {confirm_seconds: .nan}\n",
        "remediator.host_failure.confirm_seconds",
        "finite",
    ),
    (
        "vcenters:\n" + VC + "remediator:\n  auth: none\n  guard: {max_failed_share: .nan}\n",
        "remediator.guard.max_failed_share",
        "finite",
    ),
    ("vcenters:\n" + vc_line(url="'https://u:pw@a.example/sdk'"), "vcenters[0].url", "userinfo"),
    ("vcenters:\n" + vc_line(url="'https://a.example:0/sdk'"), "vcenters[0].url", "1..65535"),
    ("vcenters:\n" + vc_line(url="'https://a.example:99999/sdk'"), "vcenters[0].url", "1..65535"),
    ("vcenters:\n" + vc_line(url="'http://a.example/sdk'"), "vcenters[0].url", "insecure_http"),
    ("listen: '127.0.0.1:70000'\n", "listen", "0..65535"),
    ("sync:\n  stale_after_seconds: 60\n", "sync.stale_after_seconds", "sync_stale_after"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), CASES)
def test_each_case_exits_2_naming_the_key(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    code, err = check(tmp_path, text)
    assert code == 2, err
    line = next((ln for ln in err.splitlines() if f"{key}:" in ln), None)
    assert line is not None, err
    assert fragment in line
    assert str(tmp_path / "c.yml") in line
    assert "pw@" not in err


def test_insecure_http_is_explicit(tmp_path: Path) -> None:
    text = "vcenters:\n" + vc_line(url="'http://a.example/sdk'", insecure_http="true")
    code, err = check(tmp_path, text)
    assert code == 0, err


def test_ca_file_must_be_pem(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    code, err = check(tmp_path, "vcenters:\n" + vc_line(ca_file="ca.pem"))
    assert code == 2
    assert "vcenters[0].ca_file:" in err and "PEM" in err


def test_remediator_tls_files_are_parsed(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("junk\n")
    (tmp_path / "key.pem").write_text("junk\n")
    text = (
        "vcenters:\n" + VC + "remediator:\n  auth: none\n"
        "  tls: {cert_file: cert.pem, key_file: key.pem}\n"
    )
    code, err = check(tmp_path, text)
    assert code == 2
    assert "remediator.tls" in err


def test_non_utf8_config_is_one_line(tmp_path: Path) -> None:
    code, err = check(tmp_path, b"listen: '\xff\xfe'\n")
    assert code == 2
    assert "UTF-8" in err and len(err.strip().splitlines()) == 1


def test_every_error_in_one_run(tmp_path: Path) -> None:
    text = (
        "listen: nonsense\n"
        "vcenters:\n" + vc_line(url="'ftp://x'", verify_tls="maybe") + "sync:\n"
        "  max_wait_seconds: 0\n"
        "restart_priority: {default: urgent}\n"
        "remediator:\n  dry_run: maybe\n  auth: none\n  workers: 0\n"
    )
    code, err = check(tmp_path, text)
    assert code == 2
    for key in (
        "listen",
        "vcenters[0].url",
        "vcenters[0].verify_tls",
        "sync.max_wait_seconds",
        "restart_priority.default",
        "remediator.dry_run",
        "remediator.workers",
    ):
        assert f"{key}:" in err, (key, err)


def test_offline_checks_everything_but_secrets(tmp_path: Path) -> None:
    text = (
        "vcenters:\n"
        "  - {name: a, url: 'https://a/sdk', user: u, password_file: /nonexistent/pw}\n"
        "remediator:\n  bearer_token_env: VHA_NOT_SET_ANYWHERE\n"
    )
    code, err = check(tmp_path, text, "--offline")
    assert code == 0, err
    code, err = check(tmp_path, text + "  workers: 0\n", "--offline")
    assert code == 2 and "remediator.workers" in err
    code, err = check(tmp_path, text)
    assert code == 2
    assert "vcenters[0].password_file" in err and "remediator.bearer_token_env" in err


def test_offline_accepts_the_compose_config() -> None:
    root = Path(__file__).resolve().parent.parent
    assert main(["check-config", "--offline", str(root / "deploy" / "config.compose.yml")]) == 0


@pytest.mark.parametrize("command", ["exporter", "remediator", "check-config", "demo", "report"])
def test_help_says_what_it_does(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert not description.startswith(("options:", "positional")), out
    assert len(description.split()) >= 6, out
    if command in ("exporter", "remediator"):
        assert "default" in out


def start(tmp_path: Path, command: str, text: str) -> tuple[int, str]:
    f = tmp_path / "c.yml"
    f.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "vha.cli", command, "--config", str(f)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


LOCAL_VC = (
    "vcenters:\n  - {name: a, url: 'https://127.0.0.1:1/sdk', user: u, password_env: VHA_TEST_PW}\n"
)


def test_startup_listen_taken_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = start(tmp_path, "exporter", f"listen: 127.0.0.1:{port}\n" + LOCAL_VC)
        assert code == 2
        assert err.strip().count("\n") == 0 and "listen:" in err, err
        code, err = start(
            tmp_path,
            "remediator",
            LOCAL_VC + f"remediator:\n  auth: none\n  journal: ':memory:'\n"
            f"  listen: 127.0.0.1:{port}\n",
        )
        assert code == 2
        assert err.strip().count("\n") == 0 and "remediator.listen:" in err, err


def test_startup_unwritable_journal_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, err = start(
        tmp_path,
        "remediator",
        LOCAL_VC + f"remediator:\n  auth: none\n  journal: {tmp_path / 'file' / 'j.sqlite'}\n"
        "  listen: 127.0.0.1:0\n",
    )
    assert code == 2
    assert err.strip().count("\n") == 0 and "remediator.journal:" in err, err


def test_shipped_example_token_is_refused_unless_dry_run(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    example = root / "deploy" / "secrets" / "remediator_token.example"
    text = "vcenters:\n" + VC + f"remediator:\n  bearer_token_file: {example}\n"
    code, err = check(tmp_path, text + "  dry_run: true\n")
    assert code == 0, err
    code, err = check(tmp_path, text + "  dry_run: false\n")
    assert code == 2 and "remediator.bearer_token_file:" in err and "example" in err


def test_user_env_names_the_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "vcenters:\n" + vc_line(user_env="VHA_TEST_USER").replace("user: u, ", "")
    monkeypatch.delenv("VHA_TEST_USER", raising=False)
    code, err = check(tmp_path, text)
    assert code == 2 and "vcenters[0].user_env:" in err
    assert check(tmp_path, text, "--offline")[0] == 0
    monkeypatch.setenv("VHA_TEST_USER", "reader@vsphere.local")
    assert check(tmp_path, text)[0] == 0
    code, err = check(tmp_path, "vcenters:\n" + vc_line(user_env="VHA_TEST_USER"))
    assert code == 2 and "only one of user and user_env" in err
