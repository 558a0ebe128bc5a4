"""What every collector gets: one vCenter's snapshot and its derived topology."""

from __future__ import annotations

from dataclasses import dataclass

from vcenter.config import Config

from ..families import Family, escape
from ..inventory import Inventory, ManagedObject
from ..topology import Topology


class CollectorUnavailable(Exception):
    """A collector's data source is down: report ``success`` 0 without logging each render.

    ``families`` (possibly stale) are still served; the source logs the cause once.
    """

    def __init__(self, message: str, families: list[Family] | None = None) -> None:
        super().__init__(message)
        self.families = families or []


@dataclass
class RenderContext:
    vcenter: str
    inventory: Inventory
    topology: Topology
    config: Config
    now: float

    def objects(self, type_name: str) -> list[ManagedObject]:
        return [o for o in self.inventory.objects.values() if o.type == type_name]

    def base(self, kind: str, obj: ManagedObject) -> str:
        """The identity label block of an object: vcenter, <kind>_id, <kind>."""
        vc, moid, name = escape(self.vcenter), escape(obj.moid), escape(obj.name)
        return f'vcenter="{vc}",{kind}_id="{moid}",{kind}="{name}"'
