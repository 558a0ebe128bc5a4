"""What every collector gets: one vCenter's snapshot and its derived topology."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # A patch's (patch.py): the types of the objects that changed. A collector of several
    # types may leave out the families of the others, which the published body keeps.
    changed_types: frozenset[str] | None = None
    _by_type: dict[str, list[ManagedObject]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # base objects dict -> what :meth:`changed_since` found for it
    _diffs: dict[int, tuple[dict[str, ManagedObject], list[str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def objects(self, type_name: str) -> list[ManagedObject]:
        """The objects of one type, in the inventory's order (a list of the caller's own).

        The inventory is indexed by type once per context, not scanned per call: a host's
        change had five collectors of the detection lane scan all 43,000 objects at 40,000
        VMs for the 2,500 hosts or 125 clusters. A context's inventory is a snapshot (or a
        view of one), never changed while it is rendered."""
        index = self._by_type
        if index is None:
            index = {}
            for obj in self.inventory.objects.values():
                index.setdefault(obj.type, []).append(obj)
            self._by_type = index
        return list(index.get(type_name, ()))

    def changed_since(
        self, base: dict[str, ManagedObject], since: tuple[list[str], int] | None = None
    ) -> list[str]:
        """The moids whose followed revision may differ between ``base`` (an earlier
        snapshot's objects) and this context's: changed, added or removed (a few more
        at most: one changed and changed back). ``since``: that snapshot's journal and
        mark (Inventory.journal); when this context's snapshot has the same journal, its
        slice between the two marks, else a walk. Once per base, shared by the
        block-cached collectors of a patch (collectors/cache.py)."""
        found = self._diffs.get(id(base))
        if found is not None and found[0] is base:
            return found[1]
        inv = self.inventory
        if since is not None and since[0] is inv.journal and inv.journal_mark is not None:
            out = list(dict.fromkeys(since[0][since[1] : inv.journal_mark]))
            self._diffs[id(base)] = (base, out)
            return out
        objects = inv.objects
        out = []
        common = 0
        for moid, obj in objects.items():
            old = base.get(moid)
            if old is None:
                out.append(moid)
                continue
            common += 1
            if old.followed != obj.followed:
                out.append(moid)
        if common < len(base):  # some went away
            out += [moid for moid in base if moid not in objects]
        self._diffs[id(base)] = (base, out)
        return out

    def renders(self, type_name: str) -> bool:
        """Whether families of ``type_name``'s objects are wanted (a patch wants only those
        of the types that changed; a full render wants all)."""
        return self.changed_types is None or type_name in self.changed_types

    def base(self, kind: str, obj: ManagedObject) -> str:
        """The identity label block of an object: vcenter, <kind>_id, <kind>."""
        vc, moid, name = escape(self.vcenter), escape(obj.moid), escape(obj.name)
        return f'vcenter="{vc}",{kind}_id="{moid}",{kind}="{name}"'
