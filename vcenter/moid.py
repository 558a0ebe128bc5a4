"""What a managed-object id may look like, checked before one goes anywhere near vCenter.

pyVmomi writes a managed object reference's value into the SOAP body without escaping
it, so a ``host_id`` label of ``host-21</_this><x>`` would inject XML into the request.
vCenter's own ids are short ASCII words (``host-21``, ``vm-1234``, ``domain-c7``,
``group-v3``; ESXi standalone uses ``ha-host`` and plain numbers), so anything else is
refused where it enters: the remediator's webhook, the exporter's follow filters.
"""

from __future__ import annotations

import re

MOID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def valid_moid(s: str) -> bool:
    """Whether ``s`` can be a vCenter managed-object id (ASCII word, 1 to 128 characters)."""
    return isinstance(s, str) and MOID_RE.fullmatch(s) is not None
