"""What users install: the wheel (and the Docker image's build steps), installed
non-editable into a fresh virtualenv outside the tree, running `vha check-config`,
`vha exporter` and `vha remediator` against the simulator from there.

`make test` runs from an editable install, which sees every file of the tree; this test is
the only one that sees what a wheel or the image really contains.  It stays quick and
offline: the wheel is built without build isolation (the test venv's setuptools), installed
with --no-deps, and the fresh venv finds the already-installed dependencies through a .pth
line naming the test venv's site-packages (a .pth line adds a path but runs none of that
directory's .pth files, so the tree's editable finder stays out).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pat in patterns:
        pat = pat.removeprefix("**/")
        for i in range(len(parts)):
            if fnmatch("/".join(parts[: i + 1]), pat) or fnmatch(parts[i], pat):
                return True
    return False


def dockerfile_steps(path: Path) -> tuple[list[tuple[str, str]], list[str], str, str]:
    """(COPY src, dest) of the final stage, RUN commands, WORKDIR at the first RUN, the
    ENTRYPOINT executable."""
    text = re.sub(r"\\\n", " ", path.read_text())
    copies: list[tuple[str, str]] = []
    runs: list[str] = []
    workdir, entry = "/", ""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        op = words[0].upper()
        if op == "COPY" and not any(w.startswith("--from") for w in words):
            *srcs, dest = words[1:]
            copies.extend((src, dest) for src in srcs)
        elif op == "RUN":
            runs.append(line.split(None, 1)[1])
        elif op == "WORKDIR" and not runs:
            workdir = words[1]
        elif op == "ENTRYPOINT":
            entry = re.findall(r'"([^"]+)"', line)[0]
    return copies, runs, workdir, entry


def stage_build_context(dest: Path) -> Path:
    """The Dockerfile's COPY steps applied to a directory (with .dockerignore), as the
    image's build would see them; returns the directory standing for its WORKDIR."""
    copies, _, workdir, _ = dockerfile_steps(ROOT / "Dockerfile")
    patterns = dockerignore()
    work = dest / workdir.strip("/")
    work.mkdir(parents=True)
    for src, target in copies:
        source = ROOT / src.rstrip("/")
        assert source.exists(), f"Dockerfile COPY {src}: no such path"
        out = work / target if not target.startswith("/") else dest / target.strip("/")
        if source.is_dir():
            for f in source.rglob("*"):
                rel = f.relative_to(ROOT).as_posix()
                if f.is_file() and not ignored(rel, patterns):
                    to = out / f.relative_to(source)
                    to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, to)
        else:
            to = out / source.name if target.endswith("/") else out
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to)
    return work


def fresh_venv(path: Path) -> Path:
    """A venv from the base interpreter, seeing the test venv's dependencies only."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    (site_dir,) = path.glob("lib/python*/site-packages")
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (site_dir / "vha-test-deps.pth").write_text("\n".join(deps) + "\n")
    return path / "bin" / "python"


def pip(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The wheel built from the image's build context, installed into a fresh venv."""
    top = tmp_path_factory.mktemp("install")
    src = stage_build_context(top / "image")
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(top / "dist"), str(src))
    (wheel,) = (top / "dist").glob("*.whl")
    python = fresh_venv(top / "venv")
    pip("--python", str(python), "install", "--no-deps", str(wheel))
    yield {"wheel": wheel, "python": python, "bin": python.parent, "top": top}


def test_wheel_contains_every_package_and_the_simulator_source(installed: dict[str, Any]) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    packages = find_packages(str(ROOT), include=["exporter*", "remediator*", "sim*", "vcenter*"])
    packages += find_packages(str(ROOT), include=["vha*"])
    for pkg in packages:
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, pkg
    go = {p.name for p in (ROOT / "sim").glob("*.go")}
    assert go and go <= {Path(n).name for n in names if n.startswith("sim/")}


def run_vha(
    installed: dict[str, Any], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed["bin"] / "vha"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=installed["top"],
    )


def test_installed_code_is_the_wheel_not_the_tree(installed: dict[str, Any]) -> None:
    proc = subprocess.run(
        [
            str(installed["python"]),
            "-c",
            "import exporter.collectors, vha.cli; print(vha.cli.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=installed["top"],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(installed["top"] / "venv")), proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                return bytes(resp.read())
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {last}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_installed_commands_run_against_the_simulator(
    installed: dict[str, Any], sim: Any, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text(sim.password + "\n")
    (tmp_path / "token").write_text("install-test-token-0123456789\n")
    exporter_port, remediator_port = free_port(), free_port()
    vc = f"name: sim, url: '{sim.sdk_url}', user: {sim.username}, password_file: pw"
    vc += f", ca_file: '{sim.ca_file}'" if sim.ca_file else ", verify_tls: false"
    config = tmp_path / "config.yml"
    config.write_text(
        f"listen: 127.0.0.1:{exporter_port}\n"
        f"vcenters:\n  - {{{vc}}}\n"
        "sync: {max_wait_seconds: 1}\n"
        "remediator:\n"
        f"  listen: 127.0.0.1:{remediator_port}\n"
        "  bearer_token_file: token\n"
        f"  journal: {tmp_path / 'journal.sqlite'}\n"
    )
    check = run_vha(installed, "check-config", str(config))
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout

    log = (tmp_path / "exporter.log").open("wb")
    exporter = subprocess.Popen(  # noqa: S603
        [str(installed["bin"] / "vha"), "exporter", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=installed["top"],
    )
    rlog = (tmp_path / "remediator.log").open("wb")
    remediator = subprocess.Popen(  # noqa: S603
        [str(installed["bin"] / "vha"), "remediator", "--config", str(config)],
        stdout=rlog,
        stderr=subprocess.STDOUT,
        cwd=installed["top"],
    )
    try:
        deadline = time.monotonic() + 60
        body = b""
        while time.monotonic() < deadline:
            body = wait_http(f"http://127.0.0.1:{exporter_port}/metrics", exporter)
            if (
                re.search(rb'^vsphere_up\{vcenter="sim"\} 1', body, re.M)
                and b"vsphere_host_info" in body
            ):
                break
            time.sleep(0.5)
        assert re.search(rb'^vsphere_up\{vcenter="sim"\} 1', body, re.M), body[-2000:]
        assert b"vsphere_host_info{" in body
        health = wait_http(f"http://127.0.0.1:{remediator_port}/healthz", remediator)
        assert health
    finally:
        stop(exporter)
        stop(remediator)
        log.close()
        rlog.close()
    assert "Traceback" not in (tmp_path / "exporter.log").read_text(errors="replace")


def test_dockerfile_run_steps_and_entrypoint(installed: dict[str, Any]) -> None:
    """The image's RUN steps: `pip install .` in the staged context (done by the fixture,
    --no-deps), then the user; the entrypoint resolves to the installed `vha`."""
    _, runs, _, entry = dockerfile_steps(ROOT / "Dockerfile")
    assert any(re.match(r"pip install \.(\s|$)", r) for r in runs), runs
    assert entry == "vha"
    assert (installed["bin"] / entry).exists()
    for command in ("--help", "exporter --help", "remediator --help", "check-config --help"):
        proc = run_vha(installed, *command.split())
        assert proc.returncode == 0, proc.stderr


def test_installed_demo_needs_a_source_tree_and_says_so(installed: dict[str, Any]) -> None:
    """`vha demo` generates its rules with rules/generate.py from a checkout: from a wheel
    without one it says where to point it, in one line."""
    env = {k: v for k, v in os.environ.items() if k != "VHA_SOURCE_DIR"}
    proc = subprocess.run(
        [str(installed["bin"] / "vha"), "demo", "--run-dir", str(installed["top"] / "demo")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=installed["top"],
        env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "VHA_SOURCE_DIR" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
