"""``vha``: one command for the exporter, the remediator, the demo and config checks."""

from __future__ import annotations

import argparse
import logging
import socket
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.collectors_config import parse_collectors_config
from exporter.exposition_config import parse_exposition_config, with_flags
from vcenter.config import Collector, Config, ConfigError, load_config

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)


def _print_errors(path: str, exc: ConfigError) -> None:
    """One line per error, each naming the file and the key."""
    for err in exc.errors:
        text = str(err)
        where = "" if text.startswith(str(path)) else f"{path}: "
        print(f"vha: configuration error: {where}{text}", file=sys.stderr)


def validate(path: str, *, read_secrets: bool = True, remediator: bool | None = None) -> Config:
    """Every section of the file validated, every error collected (exit 2 on any).

    ``remediator`` None checks the ``remediator:`` section when the file has one; True
    requires it (``vha remediator``)."""
    from exporter.cost import parse_cost_config  # noqa: PLC0415
    from exporter.perf import parse_performance_config  # noqa: PLC0415
    from remediator.config import parse_remediator  # noqa: PLC0415

    try:
        config = load_config(path, read_secrets=read_secrets)
    except ConfigError as exc:
        # load_config collects the core sections; check the others too before giving up,
        # from the raw document, so one run reports everything.
        errors = Collector()
        errors.add(exc)
        _other_sections(path, errors, read_secrets, remediator)
        _print_errors(path, ConfigError.combine(errors.errors))
        raise SystemExit(2) from None
    c = Collector()
    c.run(None, parse_performance_config, config)
    c.run(None, parse_cost_config, config)
    c.run(None, parse_collectors_config, config)
    c.run(None, parse_exposition_config, config)
    if remediator or (remediator is None and config.raw.get("remediator") is not None):
        base = Path(config.path).parent if config.path else None
        empty: Mapping[str, Any] = {}
        section = c.run(empty, config.section, "remediator")
        c.run(None, parse_remediator, section, base, read_secrets=read_secrets)
    if c.errors:
        _print_errors(path, ConfigError.combine(c.errors))
        raise SystemExit(2)
    return config


def _other_sections(
    path: str, errors: Collector, read_secrets: bool, remediator: bool | None
) -> None:
    """The remediator section's errors when the core sections already failed."""
    import yaml  # noqa: PLC0415

    from remediator.config import parse_remediator  # noqa: PLC0415

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return
    if not isinstance(data, dict) or data.get("remediator") is None:
        return
    if remediator is False:
        return
    errors.run(
        None, parse_remediator, data["remediator"], Path(path).parent, read_secrets=read_secrets
    )


def _check_config(args: argparse.Namespace) -> int:
    config = validate(args.config, read_secrets=not args.offline)
    names = ", ".join(vc.name for vc in config.vcenters) or "none (the demo uses the simulator)"
    mode = " (offline: secrets not read)" if args.offline else ""
    print(f"{args.config}: OK{mode}; listen {config.listen}; vCenters: {names}")
    return 0


def _startup_error(key: str, message: str) -> SystemExit:
    print(f"vha: start-up error: {key}: {message}", file=sys.stderr)
    return SystemExit(2)


def _check_bind(key: str, host: str, port: int) -> None:
    """Bind the listen address once before starting, so a taken or foreign address is one
    line naming the key rather than a traceback from inside the server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _startup_error(key, f"cannot listen on {host}:{port}: {reason}") from None


def _check_journal(path: str) -> None:
    """The journal must be creatable and writable before the webhook accepts anything."""
    if path == ":memory:":
        return
    journal = Path(path)
    try:
        journal.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(journal) as db:
            db.execute("CREATE TABLE IF NOT EXISTS vha_startup_probe (x)")
            db.execute("DROP TABLE vha_startup_probe")
        db.close()
    except (OSError, sqlite3.Error) as exc:
        raise _startup_error("remediator.journal", f"cannot write {journal}: {exc}") from None


def _exporter(args: argparse.Namespace) -> int:
    from exporter.app import run  # noqa: PLC0415 - keep `vha --help` fast

    config = validate(args.config, remediator=False)
    try:
        config = with_flags(config, args.shard, args.total_shards)
    except ConfigError as exc:
        _print_errors(args.config, exc)
        return 2
    if not config.vcenters:
        print(
            f"vha: configuration error: {args.config}: vcenters: at least one vCenter is required",
            file=sys.stderr,
        )
        return 2
    _check_bind("listen", config.listen_host, config.listen_port)
    try:
        run(config)
    except OSError as exc:
        raise _startup_error("listen", f"{config.listen}: {exc}") from None
    return 0


def _remediator(args: argparse.Namespace) -> int:
    from remediator.app import run  # noqa: PLC0415
    from remediator.config import parse_remediator_config  # noqa: PLC0415

    config = validate(args.config, remediator=True)
    try:
        rcfg = parse_remediator_config(config)
    except ConfigError as exc:
        _print_errors(args.config, exc)
        return 2
    _check_bind("remediator.listen", rcfg.listen_host, rcfg.listen_port)
    _check_journal(rcfg.journal_path)
    try:
        run(config)
    except ConfigError as exc:
        _print_errors(args.config, exc)
        return 2
    except OSError as exc:
        raise _startup_error("remediator", str(exc)) from None
    return 0


def _report(args: argparse.Namespace) -> int:
    from vha.report.report import main as report_main  # noqa: PLC0415

    return report_main(args)


def _demo(args: argparse.Namespace) -> int:
    from vha.demo.run import main as demo_main  # noqa: PLC0415

    return demo_main(args)


_HELP = argparse.ArgumentDefaultsHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vha", description="vsphere-ha-stack: vSphere HA you can see and trust."
    )
    parser.add_argument("--version", action="version", version=f"vha {__version__}")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "exporter",
        help="serve vCenter state as Prometheus metrics",
        formatter_class=_HELP,
        description=(
            "Follow every vCenter in the config (WaitForUpdatesEx) and serve its state as "
            "Prometheus metrics on the config's listen address (default 127.0.0.1:9272): "
            "/metrics, /healthz, /readyz. Exits 2 with one line naming the key on a bad "
            "config or an address it cannot listen on."
        ),
    )
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.add_argument(
        "--shard",
        type=int,
        help="serve this shard of the objects on plain /metrics (0..total-1; overrides "
        "exposition.shard); ?shard=&total_shards= still select what they name",
    )
    p.add_argument(
        "--total-shards",
        type=int,
        help="how many replicas share the objects (overrides exposition.total_shards)",
    )
    p.set_defaults(func=_exporter)

    p = sub.add_parser(
        "remediator",
        help="serve the Alertmanager webhook that remediates",
        formatter_class=_HELP,
        description=(
            "Receive Alertmanager's webhook and restart, reset or move VMs, guarded against "
            "mass failures; the config's remediator: section, default listen 127.0.0.1:9273, "
            "dry_run true (plan and journal, change nothing) and authentication required. "
            "Exits 2 with one line naming the key on a bad config, an address it cannot "
            "listen on or a journal it cannot write."
        ),
    )
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.set_defaults(func=_remediator)

    p = sub.add_parser(
        "check-config",
        help="validate a configuration file and exit",
        formatter_class=_HELP,
        description=(
            "Validate every section of a configuration file (exporter, remediator, "
            "performance, cost) and print every error, one line each naming the file and "
            "the key; exit 0 when valid, 2 otherwise."
        ),
    )
    p.add_argument("config", help="YAML configuration file")
    p.add_argument(
        "--offline",
        action="store_true",
        help="check everything but do not read secrets (password files, tokens, env vars, "
        "the TLS key), e.g. on a workstation away from the deployment",
    )
    p.set_defaults(func=_check_config)

    from vha.report.report import add_arguments as report_arguments  # noqa: PLC0415 - stdlib only

    p = sub.add_parser(
        "report",
        help="rightsizing and cost report from Prometheus",
        description=(
            "Query Prometheus for rightsizing candidates, idle VMs, old snapshots and cost, "
            "and print a Markdown report (or write report.md and report.csv with --out)."
        ),
    )
    report_arguments(p)
    p.set_defaults(func=_report)

    from vha.demo.cli import add_arguments as demo_arguments  # noqa: PLC0415

    p = sub.add_parser(
        "demo",
        help="run the stack (on the embedded simulator without a vCenter)",
        formatter_class=_HELP,
        description=(
            "`vha demo` (or `vha demo up`) starts the simulator, exporter, remediator, "
            "Prometheus and Alertmanager on loopback and narrates alerts and actions; the "
            "other actions list the simulated inventory or inject a fault into the running "
            "demo, as a person watching would."
        ),
    )
    demo_arguments(p)
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
