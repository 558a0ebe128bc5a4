"""The fault-API endpoints share their openings in sim/api.go.

The state endpoints (datastores, datastore perf, guest, sensors) share serveState: GET
answers the state, POST reads a JSON object and answers the new state, anything else is a
405. The POST endpoints on one host or VM (properties, fail, recover) share withTarget: a
body that is not a JSON object is a 400 before the target is looked up, an unknown target
a 404. These tests pin both contracts, so that the shared helpers cannot drift from what
each endpoint answered on its own."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from sim.harness import Simulator


def _raw(sim: Simulator, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
    """One request with an arbitrary body (the harness only sends JSON objects)."""
    req = urllib.request.Request(sim.api_url + path, data=data, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _paths(sim: Simulator) -> list[str]:
    inv = sim.inventory()
    q = lambda name: urllib.parse.quote(name, safe="")  # noqa: E731
    ds = sim.datastores()[0]["name"]
    return [
        f"/api/v1/datastores/{q(ds)}",
        f"/api/v1/datastores/{q(ds)}/perf",
        f"/api/v1/guest/{q(inv['vms'][0]['name'])}",
        f"/api/v1/sensors/{q(inv['hosts'][0]['name'])}",
    ]


@pytest.fixture(scope="module")
def state_sim(sim_binary: Any) -> Any:
    sim = Simulator(datacenters=1, clusters=1, hosts=2, vms=2, binary=sim_binary)
    sim.start()
    yield sim
    sim.stop()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_naming_get_and_post(state_sim: Simulator, method: str) -> None:
    for path in _paths(state_sim):
        status, body = _raw(state_sim, method, path, b"{}")
        assert (status, body) == (
            405,
            {"error": f"method {method} not allowed here (allowed: GET, POST)"},
        ), path


@pytest.mark.parametrize("data", [b"[1, 2]", b"null", b"not json", b'"x"'])
def test_a_post_body_that_is_not_an_object_is_400(state_sim: Simulator, data: bytes) -> None:
    for path in _paths(state_sim):
        assert _raw(state_sim, "POST", path, data) == (
            400,
            {"error": "body must be a JSON object"},
        ), path


def test_an_empty_post_changes_nothing_and_answers_the_state_get_answers(
    state_sim: Simulator,
) -> None:
    for path in _paths(state_sim):
        status, before = _raw(state_sim, "GET", path, None)
        assert status == 200, path
        if path.startswith("/api/v1/sensors/"):
            # a sensor POST names its sensor: an empty one is refused after the opening
            assert _raw(state_sim, "POST", path, b"") == (400, {"error": "sensor: required"})
            continue
        assert _raw(state_sim, "POST", path, b"") == (200, before), path
        assert _raw(state_sim, "POST", path, b"{}") == (200, before), path


def test_unknown_targets_are_404_before_the_method_is_looked_at(state_sim: Simulator) -> None:
    for path, what in [
        ("/api/v1/datastores/nope", "unknown datastore"),
        ("/api/v1/datastores/nope/perf", "unknown datastore"),
        ("/api/v1/guest/nope", "unknown vm"),
        ("/api/v1/sensors/nope", "unknown host"),
    ]:
        status, body = _raw(state_sim, "PUT", path, b"{}")
        assert status == 404 and what in body["error"], (path, body)


def _target_paths(sim: Simulator) -> list[str]:
    inv = sim.inventory()
    host, vm = inv["hosts"][1]["name"], inv["vms"][0]["name"]
    return [
        f"/api/v1/hosts/{host}",
        f"/api/v1/hosts/{host}/fail",
        f"/api/v1/hosts/{host}/recover",
        f"/api/v1/vms/{vm}",
    ]


@pytest.mark.parametrize("data", [b"[1]", b"nope"])
def test_a_target_post_that_is_not_an_object_is_400_even_for_an_unknown_target(
    state_sim: Simulator, data: bytes
) -> None:
    paths = _target_paths(state_sim)
    unknown = [p.replace(p.split("/")[4], "nope") for p in paths]
    for path in paths + unknown:
        assert _raw(state_sim, "POST", path, data) == (
            400,
            {"error": "body must be a JSON object"},
        ), path


def test_a_target_post_to_an_unknown_target_is_404(state_sim: Simulator) -> None:
    for path, what in [
        ("/api/v1/hosts/nope", 'unknown host "nope"'),
        ("/api/v1/hosts/nope/fail", 'unknown host "nope"'),
        ("/api/v1/hosts/nope/recover", 'unknown host "nope"'),
        ("/api/v1/vms/nope", 'unknown vm "nope"'),
    ]:
        assert _raw(state_sim, "POST", path, b"{}") == (404, {"error": what}), path


@pytest.mark.parametrize(
    ("endpoint", "body", "error"),
    [
        ("fail", b'{"bogus": 1}', 'unknown key "bogus" (allowed: dasHostState)'),
        (
            "fail",
            b'{"dasHostState": "master"}',
            'dasHostState: invalid value "master" (allowed: hostDown, networkIsolated, '
            "networkPartitionedFromMaster)",
        ),
        (
            "fail",
            b'{"dasHostState": 3}',
            "dasHostState: expected a string, one of hostDown, "
            "networkIsolated, networkPartitionedFromMaster",
        ),
        (
            "recover",
            b'{"dasHostState": "hostDown"}',
            'unknown key "dasHostState" (allowed: staleVms)',
        ),
        ("recover", b'{"staleVms": "x"}', 'staleVms: invalid value "x"'),
    ],
)
def test_fail_and_recover_take_only_their_one_key(
    state_sim: Simulator, endpoint: str, body: bytes, error: str
) -> None:
    host = state_sim.inventory()["hosts"][1]["name"]
    status, answer = _raw(state_sim, "POST", f"/api/v1/hosts/{host}/{endpoint}", body)
    assert status == 400 and answer["error"].startswith(error), answer


def test_fail_then_recover_with_empty_bodies_use_the_defaults(state_sim: Simulator) -> None:
    host = state_sim.inventory()["hosts"][1]["name"]
    status, failed = _raw(state_sim, "POST", f"/api/v1/hosts/{host}/fail", b"")
    assert status == 200 and failed["dasHostState"] == "hostDown", failed
    status, back = _raw(state_sim, "POST", f"/api/v1/hosts/{host}/recover", b"{}")
    assert status == 200 and back["connectionState"] == "connected", back


def test_host_and_vm_posts_need_a_property(state_sim: Simulator) -> None:
    paths = _target_paths(state_sim)
    for path, keys in [(paths[0], "connectionState"), (paths[3], "powerState")]:
        status, answer = _raw(state_sim, "POST", path, b"{}")
        assert status == 400 and answer["error"].startswith(
            f"no properties given (allowed: {keys}"
        ), answer
