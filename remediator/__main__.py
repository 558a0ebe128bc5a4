"""``python -m remediator --config FILE``: the remediator without the ``vha`` CLI."""

from __future__ import annotations

import argparse
import sys

from vcenter.config import ConfigError, load_config

from .journal import JournalError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediator", description=__doc__)
    parser.add_argument("--config", required=True, help="the stack's YAML config file")
    args = parser.parse_args(argv)
    from .app import run

    try:
        run(load_config(args.config))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except JournalError as exc:
        print(f"journal error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
