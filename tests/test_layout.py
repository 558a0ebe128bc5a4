"""The layout shows the architecture: parts import one way, and no hand-written module sprawls.

Data flows vCenter -> exporter -> Prometheus -> ... -> remediator -> vCenter; the code's
imports say the same: both daemons build on ``vcenter``, neither imports the other, and the
``vha`` tools sit on top where nothing imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vcenter", "exporter", "remediator", "sim", "vha")

#: What each top-level package may import of the others.
ALLOWED: dict[str, set[str]] = {
    "vcenter": set(),
    "sim": set(),
    "exporter": {"vcenter"},
    "remediator": {"vcenter"},
    "vha": {"vcenter", "exporter", "remediator", "sim"},
}

MAX_LINES = 800
#: Generated or data-like files that are not hand-written modules.
NOT_HAND_WRITTEN: set[str] = set()


def _sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py") if "build" not in p.parts)


def _imported_tops(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_builds_on(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_tops(path) - ALLOWED[package] - {package})
        for path in _sources(package)
    }
    assert {k: v for k, v in wrong.items() if v} == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_says_what_it_owns(package: str) -> None:
    init = ROOT / package / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 15, f"{package}/__init__.py needs a docstring"


def test_no_hand_written_module_over_800_lines() -> None:
    tops = (*PACKAGES, "rules", "grafana", "bench", "tests")
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources(*tops)
        if str(p.relative_to(ROOT)) not in NOT_HAND_WRITTEN
        and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
