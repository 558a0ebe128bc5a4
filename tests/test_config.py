"""Configuration validation: every mistake is a clear error naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vcenter.config import ConfigError, Secret, load_config, parse_config
from vha.cli import main


def vc(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "vc1",
        "url": "https://vc1.example.com/sdk",
        "user": "monitor@vsphere.local",
        "password_env": "VHA_TEST_PW",
    }
    base.update(extra)
    return base


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VHA_TEST_PW", "s3cret-value")


def test_minimal_config_defaults() -> None:
    cfg = parse_config({"vcenters": [vc()]})
    assert cfg.listen == "127.0.0.1:9272"
    (v,) = cfg.vcenters
    assert v.verify_tls is True
    assert v.password.get() == "s3cret-value"
    assert "s3cret" not in repr(v) and "s3cret" not in str(v.password)
    assert (v.host, v.port, v.path) == ("vc1.example.com", 443, "/sdk")


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"vcenters": [vc(url="ftp://x")]}, "vcenters[0].url", "https://"),
        ({"vcenters": [vc(password="inline")]}, "vcenters[0].password", "password_file"),
        ({"vcenters": [vc(password_env="VHA_MISSING_PW")]}, "vcenters[0].password_env", "not set"),
        (
            {"vcenters": [vc(password_env=None, password_file="/nonexistent/pw")]},
            "vcenters[0].password_file",
            "cannot read",
        ),
        ({"vcenters": [vc(verify_tls="yes")]}, "vcenters[0].verify_tls", "true or false"),
        ({"vcenters": [vc(bogus=1)]}, "vcenters[0].bogus", "unknown key"),
        ({"vcenters": [vc(), vc()]}, "vcenters[1].name", "duplicate"),
        ({"vcenters": [vc(user=None)]}, "vcenters[0].user", "required"),
        ({"listen": "nonsense"}, "listen", "HOST:PORT"),
        ({"listen": "127.0.0.1:99999"}, "listen", "0..65535"),
        (
            {"fault_domains": {"rules": [{"match": "(", "fault_domain": "a"}]}},
            "fault_domains.rules[0].match",
            "regular expression",
        ),
        ({"restart_priority": {"default": "urgent"}}, "restart_priority.default", "must be one of"),
        ({"protection": {"exclude_names": "x"}}, "protection.exclude_names", "list"),
        ({"sync": {"max_wait_seconds": 0}}, "sync.max_wait_seconds", ">="),
        ({"unknown_section": {}}, "unknown_section", "unknown key"),
        ([1, 2], "", "mapping"),
    ],
)
def test_errors_name_the_key(data: object, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.key == key
    assert fragment in str(err.value)
    assert "s3cret" not in str(err.value)


def test_password_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    cfg_file = tmp_path / "c.yml"
    cfg_file.write_text(
        "vcenters:\n  - {name: a, url: 'https://a/sdk', user: u, password_file: pw}\n"
    )
    cfg = load_config(cfg_file)
    assert cfg.vcenters[0].password == Secret("from-file")


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("listen: [unclosed\nvcenters: 1\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_config(f)


def test_fault_domain_precedence() -> None:
    cfg = parse_config(
        {
            "fault_domains": {
                "custom_attribute": "HA-FaultDomain",
                "rules": [{"match": "^esx-a", "fault_domain": "rack-a"}],
                "static": {"rack-z": ["esx-a-09"]},
            }
        }
    )
    fd = cfg.fault_domains
    assert fd.resolve("esx-a-09", {"HA-FaultDomain": "x"}) == "rack-z"
    assert fd.resolve("esx-a-01", {"HA-FaultDomain": "power-1"}) == "power-1"
    assert fd.resolve("esx-a-01", {}) == "rack-a"
    assert fd.resolve("esx-b-01", {}) == ""


def test_protection_and_priority() -> None:
    cfg = parse_config(
        {
            "protection": {"exclude_names": ["^test-"], "custom_attribute": "HA-Protect"},
            "restart_priority": {
                "rules": [{"match": "^db", "priority": "highest"}],
                "default": "low",
            },
        }
    )
    assert cfg.protection.is_protected("web-1", {})
    assert not cfg.protection.is_protected("test-1", {})
    assert not cfg.protection.is_protected("web-1", {"HA-Protect": "false"})
    rp = cfg.restart_priority
    assert rp.resolve("web", {"HA-RestartPriority": "High"}) == "high"
    assert rp.resolve("db1", {"HA-RestartPriority": "nonsense"}) == "highest"
    assert rp.resolve("web", {}) == "low"


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yml"
    good.write_text(
        "vcenters:\n  - {name: a, url: 'https://a/sdk', user: u, password_env: VHA_TEST_PW}\n"
    )
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text("vcenters:\n  - {name: a, url: 'https://a/sdk', user: u, password: hunter2}\n")
    with pytest.raises(SystemExit) as exc:
        main(["check-config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"vcenters\[0\]\.password: inline secrets", err)
    assert "hunter2" not in err


def test_check_config_validates_the_remediator_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("remediator:\n  dry_run: maybe\n  bearer_token_env: VHA_TEST_PW\n")
    with pytest.raises(SystemExit) as exc:
        main(["check-config", str(bad)])
    assert exc.value.code == 2
    assert "remediator.dry_run" in capsys.readouterr().err
