"""The mass-failure bounds: one source for the alert rules and the remediator's guard.

Above either bound, many hosts of a cluster failing together is far more likely a network
partition or a blind watcher than dead hardware (vSphere HA's isolation and partition
lesson). ``VsphereClusterMassHostFailure`` (rules/rulegen/fault_domains.py, thresholds
``mass_failure.*`` in rules/config.yml) pages a person and inhibits the cluster's per-host
restarts; the remediator's own guard (``remediator.guard``) holds the same work from its
live reads. Both take their defaults from here, so the two brakes cannot drift apart:
rules/config.yml leaves ``mass_failure.max_hosts`` / ``max_share`` at ``null`` (this
default), and remediator/config.py defaults ``guard.max_failed_hosts`` /
``max_failed_share`` to the same numbers. A site that changes one should change both.
"""

from __future__ import annotations

#: More failed hosts than this in one cluster (and always at least 2) is a mass failure.
MAX_FAILED_HOSTS = 2
#: ...and so is more than this share of a cluster's hosts (from 2 failed hosts up).
MAX_FAILED_SHARE = 0.34
#: A fault domain of fewer hosts is a host: its failure is left to the per-host alerts
#: (``fault_domains.min_hosts`` in rules/config.yml, null = this), and the guard counts it
#: like any failed host instead of excusing it as a domain confirmed down.
FAULT_DOMAIN_MIN_HOSTS = 2
