"""Static checks of the deployment: docker-compose.yml, the Dockerfiles, the Prometheus and
Alertmanager configs it mounts, and deploy/config.compose.yml.

No Docker engine is needed: compose is parsed with PyYAML; `docker compose config` runs only
where the compose plugin is installed. promtool and amtool (Debian packages prometheus and
prometheus-alertmanager, installed by `make deps`) check the Prometheus and Alertmanager
configs.
"""

from __future__ import annotations

import fnmatch
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
EXPORTER_JOB = "vsphere-exporter"
REMEDIATOR_JOB = "vha-remediator"


@cache
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and doc.get("services"), "docker-compose.yml has no services"
    return doc


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def interpolate(text: str) -> str:
    """Compose's variable interpolation (``${VAR}``, ``${VAR:-default}``, ``$VAR``)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        value = os.environ.get(name)
        return value if value else (match.group(2) or "")

    return _VAR.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


def repo_path(text: str) -> Path:
    path = Path(interpolate(text))
    return path if path.is_absolute() else (ROOT / path).resolve()


def build_of(service: dict[str, Any]) -> tuple[Path, Path] | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = repo_path(build.get("context", "."))
    return context, context / build.get("dockerfile", "Dockerfile")


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of the bind mounts; named volumes are left out."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                ro = bool(volume.get("read_only"))
                out.append((volume["source"], volume["target"], ro))
            continue
        source, _, rest = volume.partition(":")
        target, _, mode = rest.partition(":")
        if source.startswith((".", "/", "~", "$")):
            out.append((source, target, "ro" in mode.split(",")))
    return out


def named_volumes(service: dict[str, Any]) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "volume":
                out.append(volume["source"])
            continue
        source = volume.partition(":")[0]
        if source and not source.startswith((".", "/", "~", "$")) and ":" in volume:
            out.append(source)
    return out


def references(service: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(name, target in the container) of the service's configs or secrets."""
    out = []
    for ref in service.get(kind, []):
        name = ref if isinstance(ref, str) else ref["source"]
        default = f"/run/secrets/{name}" if kind == "secrets" else f"/{name}"
        target = default if isinstance(ref, str) else ref.get("target", default)
        if kind == "secrets" and not target.startswith("/"):
            target = f"/run/secrets/{target}"
        out.append((name, target))
    return out


def config_file(service_name: str, target: str) -> Path:
    """The repository file compose mounts at ``target`` in ``service_name`` (config or bind)."""
    service = services()[service_name]
    for name, tgt in references(service, "configs"):
        if tgt == target:
            return repo_path(compose()["configs"][name]["file"])
    for source, tgt, _ in bind_mounts(service):
        if target == tgt or target.startswith(tgt.rstrip("/") + "/"):
            return repo_path(source) / target[len(tgt) :].lstrip("/")
    raise AssertionError(f"{service_name}: nothing is mounted at {target}")


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of every published port."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            host_ip = port.get("host_ip", "0.0.0.0")
            out.append((host_ip, int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) == 1:
            continue  # container port only: Docker picks a random host port
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host_ip, int(parts[-2]), int(parts[-1])))
    return out


# --- compose structure ---------------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build() -> None:
    for name, service in services().items():
        assert service.get("image") or service.get("build"), f"{name}: no image and no build"
        built = build_of(service)
        if built:
            context, dockerfile = built
            assert context.is_dir(), f"{name}: build context {context} missing"
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"


def test_third_party_images_are_pinned() -> None:
    for name, service in services().items():
        if service.get("build"):
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_bind_mounted_paths_exist_and_are_read_only() -> None:
    for name, service in services().items():
        for source, target, read_only in bind_mounts(service):
            assert repo_path(source).exists(), f"{name}: {source} does not exist"
            assert read_only, f"{name}: mount {source}:{target} read-only (:ro)"


def test_named_volumes_are_declared() -> None:
    declared = set(compose().get("volumes") or {})
    for name, service in services().items():
        for volume in named_volumes(service):
            assert volume in declared, f"{name}: volume {volume} is not declared"


def test_published_host_ports_are_unique() -> None:
    seen: dict[int, str] = {}
    for name, service in services().items():
        for _, port, _ in published_ports(service):
            assert port not in seen, f"host port {port}: {seen.get(port)} and {name}"
            seen[port] = name


def test_documented_ports_are_published() -> None:
    expected = {
        "exporter": 9272,
        "remediator": 9273,
        "prometheus": 9090,
        "grafana": 3000,
        "simulator": 8989,
    }
    for name, port in expected.items():
        assert port in {p for _, p, _ in published_ports(services()[name])}, (name, port)
    assert 8990 in {p for _, p, _ in published_ports(services()["simulator"])}
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for port in (*expected.values(), 8990):
        assert str(port) in deploy, f"docs/deploy.md does not mention port {port}"


def test_simulator_ports_stay_on_loopback() -> None:
    # The fault-injection API has no authentication.
    for host_ip, port, _ in published_ports(services()["simulator"]):
        assert host_ip == "127.0.0.1", f"simulator port {port} is published beyond loopback"


def test_configs_and_secrets_exist() -> None:
    doc = compose()
    for kind in ("configs", "secrets"):
        declared = doc.get(kind) or {}
        for name, entry in declared.items():
            assert "file" in entry, f"{kind}.{name}: only file-based {kind} are used here"
            assert repo_path(entry["file"]).is_file(), f"{kind}.{name}: {entry['file']} missing"
        for service_name, service in services().items():
            for name, _ in references(service, kind):
                assert name in declared, f"{service_name}: {kind} {name} is not declared"


def test_depends_on_names_exist() -> None:
    names = set(services())
    for name, service in services().items():
        deps = service.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else list(deps):
            assert dep in names, f"{name} depends on unknown service {dep}"
            assert dep != name


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("docker CLI not installed")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed; YAML checks only")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


# --- Dockerfiles ------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    return out


def copy_sources(args: str) -> list[str] | None:
    """The sources of a COPY/ADD (None for ``--from``: they come from another stage)."""
    if args.startswith("["):
        words = json.loads(args)
    else:
        words = args.split()
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        return None
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def dockerignore() -> list[str]:
    path = ROOT / ".dockerignore"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.startswith("#")]


def built_dockerfiles() -> list[tuple[str, Path, Path]]:
    out = []
    for name, service in services().items():
        built = build_of(service)
        if built:
            out.append((name, *built))
    return out


def test_dockerfile_copy_sources_exist() -> None:
    ignored = dockerignore()
    for name, context, dockerfile in built_dockerfiles():
        for instruction, args in dockerfile_instructions(dockerfile):
            if instruction not in ("COPY", "ADD"):
                continue
            sources = copy_sources(args)
            for source in sources or ():
                matches = glob.glob(str(context / source))
                assert matches, f"{name}: {dockerfile.name}: COPY source {source} missing"
                for match in matches:
                    rel = Path(match).relative_to(context).as_posix()
                    hit = [p for p in ignored if fnmatch.fnmatch(rel, p.rstrip("/"))]
                    assert not hit, f"{name}: COPY {source}: excluded by .dockerignore {hit}"


def test_project_image() -> None:
    steps = dockerfile_instructions(ROOT / "Dockerfile")
    froms = [a for i, a in steps if i == "FROM"]
    assert froms and froms[0].startswith("python:3.11-slim")
    assert any(i == "RUN" and "pip install ." in a for i, a in steps)
    assert ("ENTRYPOINT", '["vha"]') in steps
    assert any(i == "USER" for i, _ in steps), "run as an unprivileged user"
    for name in ("exporter", "remediator"):
        service = services()[name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["command"][0] == name


def test_simulator_image() -> None:
    steps = dockerfile_instructions(ROOT / "sim" / "Dockerfile")
    assert [a for i, a in steps if i == "FROM"][0].startswith("debian:bookworm")
    build = " ".join(a for i, a in steps if i == "RUN")
    assert "golang-go" in build and "golang-github-vmware-govmomi-dev" in build
    assert "GO111MODULE=off" in build and "GOPATH=/usr/share/gocode" in build


# --- what the services are given ----------------------------------------------------------------


def vha_config() -> dict[str, Any]:
    path = config_file("exporter", "/etc/vha/config.yml")
    assert path == config_file("remediator", "/etc/vha/config.yml"), "one config for both"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def secret_path(service_name: str, secret: str) -> str:
    targets = dict(references(services()[service_name], "secrets"))
    assert secret in targets, f"{service_name} is not given the secret {secret}"
    return targets[secret]


def test_commands_use_the_mounted_config() -> None:
    for name in ("exporter", "remediator"):
        command = services()[name]["command"]
        path = command[command.index("--config") + 1]
        config_file(name, path)


def test_vha_config_is_valid(tmp_path: Path) -> None:
    """deploy/config.compose.yml passes the exporter's and the remediator's validation, with
    its /run/secrets/ files replaced by temporary ones."""
    from vcenter.config import parse_config

    raw = vha_config()
    text = json.dumps(raw)
    for secret in set(re.findall(r"/run/secrets/(\w+)", text)):
        (tmp_path / secret).write_text("example\n", encoding="utf-8")
        text = text.replace(f"/run/secrets/{secret}", str(tmp_path / secret))
    os.environ["VHA_VCENTER_USER"] = "vha"
    config = parse_config(json.loads(text), base=tmp_path)
    assert config.listen_host == "0.0.0.0" and config.listen_port == 9272
    try:
        from remediator.config import parse_remediator
    except ImportError:
        pytest.skip("remediator/config.py not importable yet")
    rcfg = parse_remediator(config.section("remediator"), tmp_path)
    assert rcfg.listen_host == "0.0.0.0" and rcfg.listen_port == 9273
    assert rcfg.dry_run, "the compose demo starts in dry run"


def test_vha_config_points_at_the_compose_services() -> None:
    config = vha_config()
    (vcenter,) = config["vcenters"]
    url = urlparse(vcenter["url"])
    assert url.hostname == "simulator"
    assert url.port in {c for _, _, c in published_ports(services()["simulator"])}
    assert vcenter["password_file"] == secret_path("exporter", "vcenter_exporter_password")
    assert vcenter["password_file"] == secret_path("remediator", "vcenter_remediator_password")
    assert config["remediator"]["bearer_token_file"] == secret_path(
        "remediator", "remediator_token"
    )
    journal = config["remediator"]["journal"]
    mounts = services()["remediator"]["volumes"]
    assert any(journal.startswith(m.split(":")[1] + "/") for m in mounts), "journal on a volume"


def prometheus_targets(path: Path) -> dict[str, list[str]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in doc["scrape_configs"]
    }


def test_prometheus_jobs_match_the_rules_and_dashboards() -> None:
    rules = yaml.safe_load((ROOT / "rules" / "config.yml").read_text(encoding="utf-8"))
    assert rules["watcher"]["exporter_selector"] == f'job="{EXPORTER_JOB}"'
    spec = importlib.util.spec_from_file_location(
        "vha_grafana_gen", ROOT / "grafana" / "generate.py"
    )
    assert spec and spec.loader
    grafana_generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grafana_generate)
    assert (grafana_generate.EXPORTER_JOB, grafana_generate.REMEDIATOR_JOB) == (
        EXPORTER_JOB,
        REMEDIATOR_JOB,
    )
    for name in ("prometheus.yml", "prometheus.compose.yml", "prometheus.test.yml"):
        jobs = prometheus_targets(ROOT / "prometheus" / name)
        assert EXPORTER_JOB in jobs and REMEDIATOR_JOB in jobs, name


def test_compose_prometheus_scrapes_the_compose_services() -> None:
    path = config_file("prometheus", "/etc/prometheus/prometheus.yml")
    jobs = prometheus_targets(path)
    config = vha_config()
    listen = {
        "exporter": int(config["listen"].rsplit(":", 1)[1]),
        "remediator": int(config["remediator"]["listen"].rsplit(":", 1)[1]),
    }
    for job, service in ((EXPORTER_JOB, "exporter"), (REMEDIATOR_JOB, "remediator")):
        assert jobs[job] == [f"{service}:{listen[service]}"], job
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    (am,) = doc["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    for rule_file in doc["rule_files"]:
        mounted = config_file("prometheus", f"/etc/prometheus/{rule_file}")
        assert mounted.is_file() or not (ROOT / "rules").exists(), rule_file


def promtool() -> str:
    tool = shutil.which("promtool")
    if not tool:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return tool


def check_prometheus_config(path: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_prometheus_yml() -> None:
    if not (ROOT / "rules" / "alerts.yml").exists():
        pytest.skip("rules/alerts.yml not generated yet")
    check_prometheus_config(ROOT / "prometheus" / "prometheus.yml")


def test_promtool_accepts_the_compose_config(tmp_path: Path) -> None:
    if not (ROOT / "rules" / "alerts.yml").exists():
        pytest.skip("rules/alerts.yml not generated yet")
    # Lay it out as the container sees it: the config beside rules/.
    (tmp_path / "prometheus.yml").write_bytes(
        config_file("prometheus", "/etc/prometheus/prometheus.yml").read_bytes()
    )
    (tmp_path / "rules").symlink_to(config_file("prometheus", "/etc/prometheus/rules"))
    check_prometheus_config(tmp_path / "prometheus.yml")


def rules_generator(tmp_path: Path, *args: str) -> Path:
    generator = ROOT / "rules" / "generate.py"
    if not generator.exists():
        pytest.skip("rules/generate.py not written yet")
    out = tmp_path / "generated"
    result = subprocess.run(
        [sys.executable, str(generator), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_promtool_accepts_the_test_config_with_the_test_rules(tmp_path: Path) -> None:
    out = rules_generator(tmp_path, "--profile", "test")
    shutil.copy(ROOT / "prometheus" / "prometheus.test.yml", out / "prometheus.yml")
    check_prometheus_config(out / "prometheus.yml")


def test_compose_alertmanager_config_is_generated(tmp_path: Path) -> None:
    overrides = ROOT / "deploy" / "rules-overrides.compose.yml"
    out = rules_generator(tmp_path, "--config", str(overrides))
    mounted = config_file("alertmanager", "/etc/alertmanager/alertmanager.yml")
    assert mounted.read_text(encoding="utf-8") == (out / "alertmanager.yml").read_text(
        encoding="utf-8"
    ), "stale: regenerate deploy/alertmanager.compose.yml (see deploy/rules-overrides.compose.yml)"


def test_compose_alertmanager_reaches_the_remediator() -> None:
    path = config_file("alertmanager", "/etc/alertmanager/alertmanager.yml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    hooks = [w for r in doc["receivers"] for w in r.get("webhook_configs", [])]
    assert hooks, "no webhook receiver"
    listen_port = int(vha_config()["remediator"]["listen"].rsplit(":", 1)[1])
    for hook in hooks:
        url = urlparse(hook["url"])
        assert (url.hostname, url.port) == ("remediator", listen_port), hook["url"]
        credentials = hook["http_config"]["authorization"]["credentials_file"]
        assert credentials == secret_path("alertmanager", "remediator_token")
    amtool = shutil.which("amtool")
    if amtool:
        result = subprocess.run(
            [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_gets_the_provisioning_and_the_dashboards() -> None:
    provisioning = config_file("grafana", "/etc/grafana/provisioning")
    assert provisioning == ROOT / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "vha.yml").read_text())
    dashboards = config_file("grafana", providers["providers"][0]["options"]["path"])
    assert dashboards == ROOT / "grafana" / "dashboards"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    url = urlparse(sources["datasources"][0]["url"])
    assert url.hostname == "prometheus" and url.port == 9090
    env = services()["grafana"]["environment"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert config_file("grafana", home).is_file(), home
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == secret_path(
        "grafana", "grafana_admin_password"
    )
