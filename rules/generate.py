"""Generate the Prometheus rules and the Alertmanager config from ``rules/config.yml``.

Every threshold and selector lives in ``rules/config.yml`` (node-mixin style); this script
turns it into

* ``rules/alerts.yml``      -- the alerts, one group per concern;
* ``rules/recording.yml``   -- the aggregates the alerts and the dashboards share, and the
  rightsizing and cost rules of ``vha/report/rightsizing.py`` (its ``rightsizing:`` section);
* ``alertmanager/alertmanager.yml`` -- routes to people and to the remediator webhook, and
  the inhibition rules, whose alert names come from the same alert definitions.

The generated files are committed; ``tests/test_rules.py`` fails when they differ from what
this script makes. Usage::

    python rules/generate.py                          # rewrite the committed files
    python rules/generate.py --check                  # exit 1 when they are out of date
    python rules/generate.py --profile test --out DIR # short windows, for end-to-end tests
    python rules/generate.py --config site.yml --out /etc/vha   # a site's overrides
    python rules/generate.py --list                   # the alerts as a Markdown table

``--profile NAME`` applies ``rules/profiles/NAME.yml`` over ``rules/config.yml``, then each
``--config FILE`` is applied in order; an overrides file holds only the keys it changes.
With ``--out DIR`` all three files are written to DIR. Needs only the standard library,
PyYAML and ``vha/report/rightsizing.py`` (itself standard library only).

This file is the entry point only: the rules are built by the package ``rules/rulegen/``,
one module per alert group (``rulegen/__init__.py`` says how to add one). The names below
are re-exported for callers that ``import generate`` with ``rules/`` on ``sys.path``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
# Run as a script, rules/ is on sys.path, not the repository: vha.report.rightsizing (standard
# library only) holds the rightsizing and cost rules, shared with ``vha report``. Imported
# as ``rules.generate``, rules/ is not on sys.path: the rulegen package lives there.
for _path in (ROOT, RULES_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from rulegen.alertmanager import alertmanager as build_alertmanager  # noqa: E402
from rulegen.config import (  # noqa: E402
    CONFIG_FILE,
    PROFILES_DIR,
    ConfigError,
    Duration,
    Settings,
    load_raw,
    load_settings,
    merge,
    parse_duration,
    settings_from,
)
from rulegen.model import ACTIONS, REMEDIATIONS, SEVERITIES, Alert, Record  # noqa: E402
from rulegen.registry import ALERT_GROUPS, RECORDING_GROUPS  # noqa: E402
from rulegen.render import (  # noqa: E402
    ALERTMANAGER_FILE,
    ALERTS_FILE,
    RECORDING_FILE,
    alerts_table,
    build_alerts,
    build_recording,
    check_alerts,
    render,
)

__all__ = [
    "ACTIONS",
    "ALERTMANAGER_FILE",
    "ALERTS_FILE",
    "ALERT_GROUPS",
    "CONFIG_FILE",
    "PROFILES_DIR",
    "RECORDING_FILE",
    "RECORDING_GROUPS",
    "REMEDIATIONS",
    "SEVERITIES",
    "Alert",
    "ConfigError",
    "Duration",
    "Record",
    "Settings",
    "alerts_table",
    "build_alertmanager",
    "build_alerts",
    "build_recording",
    "check_alerts",
    "load_raw",
    "load_settings",
    "main",
    "merge",
    "parse_duration",
    "render",
    "settings_from",
]

DEFAULT_TARGETS = {
    ALERTS_FILE: RULES_DIR / ALERTS_FILE,
    RECORDING_FILE: RULES_DIR / RECORDING_FILE,
    ALERTMANAGER_FILE: ROOT / "alertmanager" / ALERTMANAGER_FILE,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python rules/generate.py",
        description="Generate rules/alerts.yml, rules/recording.yml and "
        "alertmanager/alertmanager.yml from rules/config.yml.",
    )
    parser.add_argument(
        "--profile", help="apply rules/profiles/PROFILE.yml over the config (e.g. test)"
    )
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="an overrides file applied over the config (repeatable, applied in order)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write alerts.yml, recording.yml and alertmanager.yml into DIR "
        "(default: rules/ and alertmanager/ of the repository)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files are out of date"
    )
    mode.add_argument("--list", action="store_true", help="print the alerts as a Markdown table")
    args = parser.parse_args(argv)

    try:
        settings = load_settings(args.profile, args.config)
        files = render(settings)  # a group may validate its own keys (Settings.read) here
    except ConfigError as exc:
        print(f"generate.py: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print(alerts_table(settings))
        return 0
    targets = {name: args.out / name for name in files} if args.out else dict(DEFAULT_TARGETS)
    if args.check:
        stale = [
            str(path)
            for name, path in targets.items()
            if not path.is_file() or path.read_text(encoding="utf-8") != files[name]
        ]
        if stale:
            print(
                "generate.py: out of date (run python rules/generate.py): " + ", ".join(stale),
                file=sys.stderr,
            )
            return 1
        return 0
    for name, path in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
