"""The ``exposition:`` section and the ``--shard``/``--total-shards`` flags: which shard of
the objects a replica serves on plain ``/metrics``, the kube-state-metrics way.

Each replica follows the whole vCenter (one follower each, as kube-state-metrics replicas
each watch every object) and serves shard ``shard`` of ``total_shards`` by default; an
explicit ``?shard=i&total_shards=n`` still selects what it names (from the same body), so
``?shard=0&total_shards=1`` is a replica's whole body.  The sharding itself is
exposition.py's: objects by ``crc32(vcenter NUL id) mod n``, everything else in shard 0.
The exporter owns this section, as it owns ``collectors:``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vcenter.config import Config, ConfigError, _mapping, _unknown_keys

from .exposition import MAX_SHARDS


@dataclass(frozen=True)
class ExpositionConfig:
    """The replica's default shard; ``total_shards`` 1 serves the whole body."""

    shard: int = 0
    total_shards: int = 1

    @property
    def default_shard(self) -> tuple[int, int] | None:
        return (self.shard, self.total_shards) if self.total_shards > 1 else None


def _whole(value: Any, key: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be a whole number, got {value!r}")
    return value


def check_shard(shard: Any, total: Any, *, shard_key: str, total_key: str) -> ExpositionConfig:
    """``shard`` of ``total`` validated; errors name ``shard_key`` or ``total_key``."""
    n = _whole(total, total_key, 1)
    i = _whole(shard, shard_key, 0)
    if not 1 <= n <= MAX_SHARDS:
        raise ConfigError(total_key, f"must be between 1 and {MAX_SHARDS}, got {n}")
    if not 0 <= i < n:
        raise ConfigError(shard_key, f"must be between 0 and {total_key}-1 ({n - 1}), got {i}")
    return ExpositionConfig(shard=i, total_shards=n)


def parse_exposition_config(config: Config | Mapping[str, Any]) -> ExpositionConfig:
    """The ``exposition:`` section (``{}`` when absent); errors name the key."""
    raw = config.raw if isinstance(config, Config) else config
    section = _mapping(raw.get("exposition"), "exposition")
    _unknown_keys(section, {"shard", "total_shards"}, "exposition")
    return check_shard(
        section.get("shard"),
        section.get("total_shards"),
        shard_key="exposition.shard",
        total_key="exposition.total_shards",
    )


def with_flags(config: Config, shard: int | None, total: int | None) -> Config:
    """``config`` with the command line's shard flags, which win over the file's section.

    A flag alone keeps the file's (or the default) other half; errors name the flag.
    """
    if shard is None and total is None:
        return config
    base = parse_exposition_config(config)
    checked = check_shard(
        base.shard if shard is None else shard,
        base.total_shards if total is None else total,
        shard_key="--shard" if shard is not None else "exposition.shard",
        total_key="--total-shards" if total is not None else "exposition.total_shards",
    )
    section = {"shard": checked.shard, "total_shards": checked.total_shards}
    return dataclasses.replace(config, raw={**config.raw, "exposition": section})
