"""docker-compose.yml is safe by default: nothing published beyond the host's loopback,
no Prometheus lifecycle API, Alertmanager only on the compose network, one vCenter account
and secret per daemon, and one story for secret file modes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_compose import ROOT, compose, published_ports, references, services, vha_config


def test_every_published_port_is_on_loopback() -> None:
    for name, service in services().items():
        for host_ip, port, _ in published_ports(service):
            assert host_ip == "127.0.0.1", f"{name}: port {port} published on {host_ip}"
        for port in service.get("ports", []):
            assert ":" in str(port) or isinstance(port, dict), f"{name}: {port} picks a host port"


def test_prometheus_has_no_lifecycle_api() -> None:
    for name, service in services().items():
        command = " ".join(map(str, service.get("command") or []))
        assert "--web.enable-lifecycle" not in command, f"{name}: /-/quit and /-/reload open"
        assert "--web.enable-admin-api" not in command, name


def test_alertmanager_is_only_on_the_compose_network() -> None:
    assert not services()["alertmanager"].get("ports"), "Alertmanager's API has no auth"


def test_exporter_and_remediator_have_their_own_vcenter_account() -> None:
    exporter = dict(references(services()["exporter"], "secrets"))
    remediator = dict(references(services()["remediator"], "secrets"))
    vcenter_secrets = {n for n in compose()["secrets"] if n.startswith("vcenter_")}
    assert vcenter_secrets == {"vcenter_exporter_password", "vcenter_remediator_password"}
    assert "vcenter_exporter_password" in exporter and "vcenter_remediator_password" not in exporter
    assert "vcenter_remediator_password" in remediator
    assert "vcenter_exporter_password" not in remediator
    assert "remediator_token" not in exporter
    # Same config file for both; the user and the secret differ per container.
    (vc,) = vha_config()["vcenters"]
    assert "user" not in vc and vc["user_env"]
    assert exporter["vcenter_exporter_password"] == vc["password_file"]
    assert remediator["vcenter_remediator_password"] == vc["password_file"]
    users = {
        name: (services()[name].get("environment") or {}).get(vc["user_env"])
        for name in ("exporter", "remediator")
    }
    assert all(users.values()), users
    for name in ("grafana", "prometheus", "alertmanager"):
        names = {n for n, _ in references(services()[name], "secrets")}
        assert not names & vcenter_secrets, f"{name} gets a vCenter password"


def test_the_remediator_refuses_the_example_token_unless_dry_run() -> None:
    token = (ROOT / "deploy" / "secrets" / "remediator_token.example").read_text().strip()
    from remediator.config import EXAMPLE_TOKEN_PREFIX

    assert token.startswith(EXAMPLE_TOKEN_PREFIX)
    assert vha_config()["remediator"]["dry_run"] is True


def test_one_story_for_secret_file_modes() -> None:
    """Compose bind-mounts secret files with their host modes, and the containers run as
    uid 10001 (vha), 472 (Grafana), nobody: 0600 files would be unreadable to them.  The
    docs say the same thing everywhere: 0644 files in a 0700 directory."""
    texts = {
        p: p.read_text(encoding="utf-8")
        for p in (ROOT / "deploy" / "secrets" / "README.md", ROOT / "docs" / "deploy.md")
    }
    for path, text in texts.items():
        assert not re.search(r"(chmod|mode) 0?600\b", text), f"{path}: recommends 0600"
        assert re.search(r"\b0?644\b", text) and re.search(r"\b0?700\b", text), path


def test_docs_describe_exposing_behind_a_proxy() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "127.0.0.1" in deploy and "reverse proxy" in deploy
    assert Path(ROOT / "docker-compose.yml").read_text().count("127.0.0.1:") >= 6
