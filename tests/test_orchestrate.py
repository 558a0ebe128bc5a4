"""remediator.orchestrate's pure parts: where the stack's orchestration defaults apply, and
the ``remediator.orchestration`` section's validation (one clear error per bad key)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from remediator.ha_settings import ClusterHA, Readiness
from remediator.orchestrate import effective, tier_label
from vcenter.config import ConfigError

from .remediator_fixtures import rconfig

STACK = {"ready_condition": "poweredOn", "post_ready_delay_seconds": 5, "timeout_seconds": 90}
HA_OFF = ClusterHA("c1", "C1", enabled=False)
HA_ON = replace(HA_OFF, enabled=True)


def test_stack_defaults_apply_where_the_remediator_restarts_and_the_cluster_sets_none() -> None:
    deferring = rconfig(ha={"defer_to_ha": True}, orchestration=STACK)
    c = effective(HA_OFF, "c1", deferring)
    assert c.readiness == Readiness("poweredOn", 5) and c.priority_timeout == 90
    # vSphere HA restarts on an HA cluster: its own settings (vSphere's default, none)
    assert effective(HA_ON, "c1", deferring).readiness == Readiness()
    # defer_to_ha false: the remediator restarts there too
    assert effective(HA_ON, "c1", rconfig(orchestration=STACK)).readiness.condition == "poweredOn"
    # the cluster's own setting wins, even where HA is off (dormant in vSphere)
    own = replace(HA_OFF, readiness=Readiness("guestHbStatusGreen", 2), priority_timeout=30)
    assert effective(own, "c1", deferring) == own
    # an unreadable cluster: the stack's defaults
    assert effective(None, "c1", deferring).readiness.condition == "poweredOn"
    # the default configuration: nothing waits
    assert effective(HA_OFF, "c1", rconfig()).readiness == Readiness("none", 0)


def test_cross_decision_settings() -> None:
    o = rconfig(orchestration={"cluster_window_seconds": 120, "batch_seconds": 0}).orchestration
    assert (o.cluster_window_seconds, o.batch_seconds) == (120, 0)
    assert (
        rconfig().orchestration.cluster_window_seconds,
        rconfig().orchestration.batch_seconds,
    ) == (600, 5)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"ready_condition": "green"}, "remediator.orchestration.ready_condition: must be one of"),
        ({"poll_seconds": 0}, "remediator.orchestration.poll_seconds: must be >= 0.1"),
        ({"timeout_seconds": -1}, "remediator.orchestration.timeout_seconds: must be >= 1"),
        ({"post_ready_delay": 3}, "remediator.orchestration.post_ready_delay: unknown key"),
        (
            {"cluster_window_seconds": -1},
            "remediator.orchestration.cluster_window_seconds: must be >= 0",
        ),
        ({"batch_seconds": 301}, "remediator.orchestration.batch_seconds: must be <= 300"),
    ],
)
def test_bad_orchestration_config_is_one_clear_error(
    section: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        rconfig(orchestration=section)
    assert message in str(err.value)


def test_tier_label() -> None:
    assert tier_label({"orchestration": {"tier": 2, "tiers": 3}}) == "tier 2/3"
    assert tier_label({}) == "" and tier_label(None) == ""
