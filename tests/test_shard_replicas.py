"""Replica sharding, the kube-state-metrics way: ``--shard``/``--total-shards`` (or
``exposition.shard``/``exposition.total_shards``) pick what plain ``/metrics`` serves.

Against the real simulator; the flags through the real ``vha exporter`` command line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.app import EXPORTER, create_app
from exporter.exposition_config import parse_exposition_config, with_flags
from vcenter.config import ConfigError, parse_config

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import parse, select


def _no_process(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], float | None]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for s in parse(text)
        if not s.name.startswith("process_")
    )


async def test_a_replica_serves_its_shard_on_plain_metrics(sim: Any, aiohttp_client: Any) -> None:
    config = exporter_config(sim_vcenter(sim), exposition={"shard": 1, "total_shards": 2})
    client = await aiohttp_client(create_app(config))
    # Shard 1 has no vsphere_up (shard 0 has the vCenter-level families): wait on the body.
    await wait_for(
        client,
        lambda s: any(x.name == "vsphere_vm_info" for x in s),
        timeout=60,
    )
    renderer = client.server.app[EXPORTER].renderer
    renderer.mark_dirty()
    body = await client.get("/metrics")
    text = await body.text()
    samples = parse(text)
    assert not select(samples, "vsphere_up")  # shard 0's
    assert select(samples, "process_resident_memory_bytes")  # the replica's own process
    # Plain /metrics is what ?shard=1&total_shards=2 names; query parameters still win.
    asked = await (await client.get("/metrics?shard=1&total_shards=2")).text()
    whole = await (await client.get("/metrics?shard=0&total_shards=1")).text()
    assert select(parse(whole), "vsphere_up", vcenter="vc1")
    vms = {s.labels["vm_id"] for s in parse(whole) if s.name == "vsphere_vm_info"}
    mine = {s.labels["vm_id"] for s in samples if s.name == "vsphere_vm_info"}
    assert mine and mine < vms
    for _ in range(40):  # a render may land between the two scrapes (tags, Tools after sync)
        if _stable(_no_process(text)) == _stable(_no_process(asked)):
            break
        await asyncio.sleep(0.25)
        text = await (await client.get("/metrics")).text()
        asked = await (await client.get("/metrics?shard=1&total_shards=2")).text()
    assert _stable(_no_process(text)) == _stable(_no_process(asked))
    gz = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert {
        s.labels["vm_id"] for s in parse(await gz.text()) if s.name == "vsphere_vm_info"
    } == mine


def _stable(rows: list[Any]) -> list[Any]:
    """Without the series that move between two scrapes (timestamps, counters of renders)."""
    moving = ("timestamp_seconds", "_duration_seconds", "render_lag", "_total", "perf_")
    return [r for r in rows if not any(m in r[0] for m in moving)]


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ({"shard": 2, "total_shards": 2}, "exposition.shard", "between 0 and"),
        ({"shard": 1}, "exposition.shard", "exposition.total_shards-1 (0), got 1"),
        ({"total_shards": 0}, "exposition.total_shards", "between 1 and 256, got 0"),
        ({"total_shards": "4"}, "exposition.total_shards", "whole number"),
        ({"shard": True, "total_shards": 2}, "exposition.shard", "whole number"),
        ({"shards": 2}, "exposition.shards", "unknown key"),
    ],
)
def test_bad_exposition_section_names_the_key(
    section: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_exposition_config({"exposition": section})
    assert err.value.key == key and message in str(err.value)


def test_flags_override_the_section() -> None:
    config = parse_config({"exposition": {"shard": 0, "total_shards": 4}})
    assert parse_exposition_config(config).default_shard == (0, 4)
    assert parse_exposition_config(with_flags(config, 3, None)).default_shard == (3, 4)
    assert parse_exposition_config(with_flags(config, 1, 2)).default_shard == (1, 2)
    assert parse_exposition_config(parse_config({})).default_shard is None
    with pytest.raises(ConfigError) as err:
        with_flags(config, 4, None)
    assert err.value.key == "--shard"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shard", "2", "--total-shards", "2"], "--shard: must be between 0 and"),
        (["--total-shards", "300"], "--total-shards: must be between 1 and 256, got 300"),
    ],
)
def test_bad_shard_flags_are_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "vcenters": [
                    {
                        "name": "vc",
                        "url": "https://127.0.0.1:1/sdk",
                        "user": "u",
                        "password_env": "VHA_NOPE",
                        "verify_tls": False,
                    }
                ]
            }  # fmt: skip
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "vha.cli", "exporter", "--config", str(cfg), *flags],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"VHA_NOPE": "x", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


DOCS = Path(__file__).resolve().parent.parent / "docs" / "exporter.md"


def test_documented_replica_scrape_configs_pass_promtool(tmp_path: Path) -> None:
    import re  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    fenced = re.findall(r"^```(\w*)\n(.*?)^```", DOCS.read_text(), re.S | re.M)
    blocks = [body for lang, body in fenced if not lang]  # the query-parameter ones: yaml
    configs = [d for d in map(yaml.safe_load, blocks) if isinstance(d, dict)]
    configs = [c for c in configs if "scrape_configs" in c]
    targets = [c["scrape_configs"][0]["static_configs"] for c in configs]
    assert [len(t) for t in targets] == [2, 4]
    for static in targets:  # one address per replica, each with its shard label
        assert len({t["targets"][0] for t in static}) == len(static)
        assert [t["labels"]["shard"] for t in static] == [str(i) for i in range(len(static))]
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    for i, config in enumerate(configs):
        path = tmp_path / f"prometheus-{i}.yml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.run(
            ["promtool", "check", "config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
