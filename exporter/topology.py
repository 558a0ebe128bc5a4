"""Relationships the renderer needs: datacenter, cluster and fault domain of each object.

Computed from one consistent inventory snapshot at render time (cheap: one dict pass), so a
host moved between clusters or a renamed cluster is reflected without bookkeeping in the
update path.
"""

from __future__ import annotations

from collections.abc import Mapping

from vcenter.config import Config

from .inventory import Inventory, ManagedObject


class Topology:
    def __init__(self, inventory: Inventory, config: Config) -> None:
        self.objects = inventory.objects
        self.custom_fields = inventory.custom_fields
        self.config = config
        self._dc: dict[str, str] = {}
        self.host_cluster: dict[str, tuple[str, str]] = {}
        self.host_fault_domain: dict[str, str] = {}
        self.host_vm_count: dict[str, int] = {}
        for obj in self.objects.values():
            if obj.type == "HostSystem":
                parent = self.objects.get(obj.get("parent") or "")
                if parent is not None and parent.type == "ClusterComputeResource":
                    self.host_cluster[obj.moid] = (parent.moid, parent.name)
                else:
                    self.host_cluster[obj.moid] = ("", "")
                self.host_fault_domain[obj.moid] = config.fault_domains.resolve(
                    obj.name, self.attributes(obj)
                )
            elif obj.type == "VirtualMachine" and not obj.get("config.template"):
                host = obj.get("runtime.host")
                if host:
                    self.host_vm_count[host] = self.host_vm_count.get(host, 0) + 1

    def attributes(self, obj: ManagedObject) -> Mapping[str, str]:
        """Custom attribute values by attribute name."""
        values = obj.get("customValue") or {}
        return {self.custom_fields.get(k, str(k)): v for k, v in values.items()}

    def datacenter(self, moid: str) -> str:
        """Name of the datacenter an object lives in ("" when unknown)."""
        if moid in self._dc:
            return self._dc[moid]
        chain = []
        current: str | None = moid
        name = ""
        for _ in range(64):  # folder depth bound; guards against a malformed parent loop
            if not current:
                break
            if current in self._dc:
                name = self._dc[current]
                break
            obj = self.objects.get(current)
            if obj is None:
                break
            chain.append(current)
            if obj.type == "Datacenter":
                name = obj.name
                break
            current = obj.get("parent")
        for c in chain:
            self._dc[c] = name
        return name
