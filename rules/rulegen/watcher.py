"""The watcher group: is the stack's own view of vCenter trustworthy?

These alerts are about the exporter and its vCenter sessions, not about vSphere. They come
first because every other alert is only as good as the data behind them: ``scope="watcher"``
makes ``alertmanager.py`` inhibit everything else while one fires (per vCenter, or for all of
them when the exporter itself is down), so nothing is remediated on a stale or partial view.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import q

GROUP = "vsphere-watcher"


def alerts(s: Settings) -> list[Alert]:
    return [
        Alert(
            name="VsphereExporterDown",
            group=GROUP,
            scope="watcher",
            expr=q(
                """
                up{$sel} == 0
                or
                absent(up{$sel})
                """,
                sel=s.exporter_selector,
            ),
            for_=s.exporter_down_for,
            severity="critical",
            remediation="none",
            summary="The vSphere exporter is down or not scraped",
            description="No successful scrape of the vSphere exporter (job {{ $labels.job }}"
            "{{ with $labels.instance }}, target {{ . }}{{ end }}) for "
            f"{s.exporter_down_for.text}. All other vSphere alerts are inhibited; nothing is "
            "remediated.",
        ),
        Alert(
            name="VsphereVcenterUnreachable",
            group=GROUP,
            scope="watcher",
            expr="max by (vcenter) (vsphere_up) == 0",
            for_=s.vcenter_unreachable_for,
            severity="critical",
            remediation="none",
            summary="vCenter {{ $labels.vcenter }} is unreachable",
            description="The exporter has had no live session to vCenter {{ $labels.vcenter }} "
            f"for {s.vcenter_unreachable_for.text}. Its alerts are inhibited; nothing is "
            "remediated.",
        ),
        Alert(
            # The exporter keeps serving a vCenter's last inventory through a short outage
            # (sync.hold_seconds) so that a reconnect does not resolve and re-fire every alert.
            # That image is frozen while the clock runs on (heartbeat ages grow), so nothing of
            # this vCenter may page or act on it: a watcher alert from the first evaluation,
            # inhibiting like VsphereVcenterUnreachable does after its `for:`.
            name="VsphereInventoryHeld",
            group=GROUP,
            scope="watcher",
            expr="max by (vcenter) (vsphere_inventory_held) == 1",
            for_=s.read.duration("watcher.inventory_held_for"),
            severity="warning",
            remediation="none",
            summary="vCenter {{ $labels.vcenter }} is out of reach; its last inventory is held",
            description="The exporter lost its session to vCenter {{ $labels.vcenter }} and "
            "serves the last inventory it saw (for up to sync.hold_seconds) so alerts do not "
            "flap across a reconnect. Its alerts are inhibited meanwhile; nothing is "
            "remediated.",
        ),
        Alert(
            name="VsphereSyncStale",
            group=GROUP,
            scope="watcher",
            expr=q(
                """
                time() - max by (vcenter) (vsphere_sync_last_success_timestamp_seconds) > $stale
                and on (vcenter) (max by (vcenter) (vsphere_up) == 1)
                """,
                stale=s.sync_stale_after.number,
            ),
            for_=s.sync_stale_for,
            severity="critical",
            remediation="none",
            summary="The view of vCenter {{ $labels.vcenter }} is stale",
            description="No update from vCenter {{ $labels.vcenter }} for "
            "{{ $value | humanizeDuration }} (limit " + s.sync_stale_after.text + ") although "
            "its session is up. Its alerts are inhibited; nothing is remediated.",
        ),
    ]
