#!/usr/bin/env python3
"""The Grafana dashboards of vsphere-ha-stack, built with grafana-foundation-sdk.

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 when a committed dashboard differs

Why generated: the eight dashboards share their variables, selectors and joins (a host's
cluster and fault domain are on ``vsphere_host_info`` only, a VM's placement on
``vsphere_vm_info`` only, see docs/metrics.md), and writing each join once keeps every panel
consistent. tests/test_dashboards.py fails when the committed JSON differs from this output,
so edit the builders, never the JSON. docs/dashboards.md describes every panel.

Each dashboard is one module of grafana/dashboards_src/ (``build()`` returns its SDK
builder); what they share is in dashboards_src/common.py (data source, variables, panel
kinds, layout) and dashboards_src/promql.py (selectors, joins, thresholds from
rules/config.yml). The SDK (``grafana-foundation-sdk``, pinned in pyproject.toml's ``test``
extra to the Grafana line docker-compose.yml runs) is needed to generate, not to run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT_DIR = HERE / "dashboards"

if str(ROOT) not in sys.path:  # run as a script: python grafana/generate.py
    sys.path.insert(0, str(ROOT))

try:
    from grafana_foundation_sdk.cog import builder as cog
except ModuleNotFoundError as exc:  # pragma: no cover - a setup problem, not a code path
    raise SystemExit(
        f"{exc.name} is missing: pip install -e '.[test]' (grafana-foundation-sdk)"
    ) from exc
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402
from grafana_foundation_sdk.models import dashboard as dm  # noqa: E402

from grafana.dashboards_src import (  # noqa: E402
    capacity,
    cost,
    datastore,
    health,
    host,
    overview,
    performance,
    remediation,
    vm,
)
from grafana.dashboards_src.common import EMPTY_IS_NORMAL  # noqa: E402
from grafana.dashboards_src.promql import EXPORTER_JOB, REMEDIATOR_JOB  # noqa: E402

__all__ = ["DASHBOARDS", "EMPTY_IS_NORMAL", "EXPORTER_JOB", "REMEDIATOR_JOB", "render_all"]

#: File name in grafana/dashboards/ -> the function building that dashboard.
DASHBOARDS: dict[str, Callable[[], cog.Builder[dm.Dashboard]]] = {
    "overview.json": overview.build,
    "host.json": host.build,
    "vm.json": vm.build,
    "capacity.json": capacity.build,
    "remediation.json": remediation.build,
    "performance.json": performance.build,
    "cost.json": cost.build,
    "datastore.json": datastore.build,
    "health.json": health.build,
}


def render(board: cog.Builder[dm.Dashboard]) -> str:
    """A dashboard's JSON text, as committed."""
    return json.dumps(board.build(), cls=JSONEncoder, indent=2) + "\n"


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(name)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
