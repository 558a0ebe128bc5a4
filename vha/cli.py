"""``vha``: one command for the exporter, the remediator, the demo and config checks."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter import __version__
from vcenter.config import Config, ConfigError, load_config, parse_collectors_config

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)


def _load(path: str) -> Config:
    """The config with every exporter-side section validated; exit 2 naming the key."""
    from exporter.cost import parse_cost_config  # noqa: PLC0415
    from exporter.perf import parse_performance_config  # noqa: PLC0415

    try:
        config = load_config(path)
        parse_performance_config(config)
        parse_cost_config(config)
        parse_collectors_config(config)
        return config
    except ConfigError as exc:
        print(f"vha: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    from remediator.config import parse_remediator  # noqa: PLC0415

    try:
        if config.raw.get("remediator") is not None:
            base = Path(config.path).parent if config.path else None
            parse_remediator(config.section("remediator"), base)
    except ConfigError as exc:
        print(f"vha: configuration error: {exc}", file=sys.stderr)
        return 2
    names = ", ".join(vc.name for vc in config.vcenters) or "none (the demo uses the simulator)"
    print(f"{args.config}: OK; listen {config.listen}; vCenters: {names}")
    return 0


def _exporter(args: argparse.Namespace) -> int:
    from exporter.app import run  # noqa: PLC0415 - keep `vha --help` fast

    config = _load(args.config)
    if not config.vcenters:
        print(
            "vha: configuration error: vcenters: at least one vCenter is required", file=sys.stderr
        )
        return 2
    run(config)
    return 0


def _remediator(args: argparse.Namespace) -> int:
    from remediator.app import run  # noqa: PLC0415

    config = _load(args.config)
    try:
        run(config)
    except ConfigError as exc:
        print(f"vha: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def _report(args: argparse.Namespace) -> int:
    from vha.report.report import main as report_main  # noqa: PLC0415

    return report_main(args)


def _demo(args: argparse.Namespace) -> int:
    from vha.demo.run import main as demo_main  # noqa: PLC0415

    return demo_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vha", description="vsphere-ha-stack: vSphere HA you can see and trust."
    )
    parser.add_argument("--version", action="version", version=f"vha {__version__}")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("exporter", help="serve vCenter state as Prometheus metrics")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.set_defaults(func=_exporter)

    p = sub.add_parser("remediator", help="serve the Alertmanager webhook that remediates")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.set_defaults(func=_remediator)

    p = sub.add_parser("check-config", help="validate a configuration file and exit")
    p.add_argument("config", help="YAML configuration file")
    p.set_defaults(func=_check_config)

    from vha.report.report import add_arguments as report_arguments  # noqa: PLC0415 - stdlib only

    p = sub.add_parser("report", help="rightsizing and cost report from Prometheus")
    report_arguments(p)
    p.set_defaults(func=_report)

    p = sub.add_parser("demo", help="run the stack (on the embedded simulator without a vCenter)")
    p.add_argument("--config", help="YAML configuration; without vCenters the simulator is used")
    p.add_argument("--run-dir", default="run/demo", help="where the demo keeps its files")
    p.add_argument("--api-url", help="simulator fault API (for the fault subcommands)")
    p.add_argument(
        "action",
        nargs="?",
        default="up",
        choices=["up", "fail-host", "recover-host", "fail-vm-heartbeat", "fail-app-heartbeat"],
        help="up (default) starts the stack; the others inject a fault into the running demo",
    )
    p.add_argument("name", nargs="?", help="host or VM name for the fault actions")
    p.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
