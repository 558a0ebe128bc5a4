"""docker-compose.yml is safe by default: nothing published beyond the host's loopback,
no Prometheus lifecycle API, Alertmanager only on the compose network, one vCenter account
and secret per daemon (and the simulator gives each its role), and one story for secret
file modes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_compose import (
    ROOT,
    compose,
    interpolate,
    published_ports,
    references,
    repo_path,
    services,
    vha_config,
)


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


def test_the_simulator_gives_each_daemon_its_account_and_role(
    sim_binary: Path, tmp_path: Path
) -> None:
    """Run the simulator with compose's own command line (each /run/secrets/ path mapped to
    the secret's default file, as compose would mount it), then log in as each daemon with
    its user and password secret: the exporter's account reads but may not change anything
    (NoPermission), the remediator's may reset a VM but not power one off."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    from sim.harness import Simulator

    sim_service = services()["simulator"]
    mounted = dict(references(sim_service, "secrets"))  # secret -> path in the container
    by_path = {path: name for name, path in mounted.items()}

    def host_file(name: str) -> Path:
        return repo_path(interpolate(compose()["secrets"][name]["file"]))

    args = [interpolate(str(a)) for a in sim_service["command"]]
    for i, a in enumerate(args):
        if i and args[i - 1] == "-account-file":
            role, user, path = a.split(":", 2)
            args[i] = f"{role}:{user}:{host_file(by_path[path])}"
    accounts = {a.split(":")[0]: a.split(":")[1] for a in args if a.count(":") >= 2}
    daemon_user = {
        name: interpolate(services()[name]["environment"]["VHA_VCENTER_USER"])
        for name in ("exporter", "remediator")
    }
    assert accounts == {"read-only": daemon_user["exporter"], "operator": daemon_user["remediator"]}
    sim = Simulator(  # compose's flags come last and win (inventory size included)
        username="vha",
        password=host_file("simulator_password").read_text().strip(),
        binary=sim_binary,
        extra_args=args,
    )
    sim.start()
    try:
        vm = sim.inventory()["vms"][0]
        for daemon, secret in (
            ("exporter", "vcenter_exporter_password"),
            ("remediator", "vcenter_remediator_password"),
        ):
            assert mounted[secret]  # the simulator has the daemon's password secret
            kwargs = {
                **sim.connection_kwargs(),
                "user": daemon_user[daemon],
                "pwd": host_file(secret).read_text().strip(),
            }
            si = SmartConnect(**kwargs)
            try:
                ref = vim.VirtualMachine(vm["moid"], si._stub)
                assert ref.runtime.powerState == "poweredOn"
                try:
                    ref.PowerOffVM_Task()
                    raise AssertionError(f"{daemon} could power a VM off")
                except vim.fault.NoPermission as err:
                    assert err.privilegeId == "VirtualMachine.Interact.PowerOff"
                if daemon == "exporter":
                    try:
                        ref.ResetVM_Task()
                        raise AssertionError("the exporter's account could reset a VM")
                    except vim.fault.NoPermission as err:
                        assert err.privilegeId == "VirtualMachine.Interact.Reset"
                else:
                    ref.ResetVM_Task()  # the remediator's account may
            finally:
                Disconnect(si)
    finally:
        sim.close()
