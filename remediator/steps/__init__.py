"""One module per step kind, the way node_exporter has one module per collector.

Each module exposes ``run(engine, step)``; the engine's work loop looks the step's kind up
in :data:`STEPS` and calls it.  A step module decides from live state what is left to do
and uses the engine's gates (:meth:`Engine.admit`, :meth:`Engine.change`) for every change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .. import policy
from . import maintenance, migrate, reset, vm_restart, watch_ha

if TYPE_CHECKING:
    from ..engine import Engine
    from ..journal import Action

STEPS: dict[str, Callable[[Engine, Action], Awaitable[None]]] = {
    policy.RESTART: vm_restart.run,
    policy.RESET: reset.run,
    policy.MIGRATE: migrate.run,
    policy.ENTER_MAINTENANCE: maintenance.run,
    policy.WATCH_HA: watch_ha.run,
}
