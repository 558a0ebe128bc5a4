"""The rules generator behind ``rules/generate.py``, one module per alert group (mixin style).

Why split: each alert group is reviewed, tested (``rules/tests/<group>.yml``) and changed on
its own, by people who should not need to read the other groups to do it. What is shared
-- the config, the PromQL joins that keep inhibitions working, the YAML layout, the
Alertmanager derivation -- has one module each, so a group module holds only its alerts.

Modules:

* ``config``        -- loads and validates ``rules/config.yml`` (+ profile, + overrides)
* ``model``         -- ``Alert``, ``Record``, ``RecordingGroup``; severities, remediations
* ``promql``        -- PromQL and annotation fragments shared by several groups
* ``emit``          -- the YAML dumper and the "GENERATED" header
* ``watcher``, ``hosts``, ``ha_master``, ``vms``, ``applications``, ``fault_domains``,
  ``capacity``, ``performance`` -- one alert group each (``GROUP``, ``alerts(s)``)
* ``recording``     -- the shared aggregates (recording.yml's vsphere-* groups)
* ``rightsizing``   -- the rightsizing and cost rules of ``vha/report/rightsizing.py``
* ``alertmanager``  -- routes and inhibitions, derived from the alerts
* ``registry``      -- the lists of groups, in output order
* ``render``        -- the files' text; the contract every alert keeps

Adding an alert group (say, alerts about the remediator itself):

1. Write ``rules/rulegen/<name>.py`` with a docstring saying what the group is for, a
   ``GROUP = "vsphere-<name>"`` (its rule group in alerts.yml) and
   ``def alerts(s: Settings) -> list[Alert]`` returning ``Alert(group=GROUP, ...)`` objects.
   Copy ``watcher.py`` or ``ha_master.py`` as a start; reuse ``promql``'s joins
   (``host_alert_expr``, ``vm_alert_expr``) for host and VM alerts so maintenance mode and
   the placement labels the inhibitions need are handled.
2. Append the module to ``ALERT_GROUPS`` in ``registry.py`` (at the end: the existing
   output then stays byte-identical). That is all the code: Alertmanager routing follows
   the ``remediation`` label, inhibition follows ``scope`` and ``host_failure``.
3. Thresholds go in a new commented section of ``rules/config.yml`` (and shorter values in
   ``rules/profiles/test.yml`` if the end-to-end tests need them). Read them in ``alerts``
   with ``s.read.duration("<section>.<key>")`` / ``s.read.number(key, low, high)`` /
   ``s.read.string(key, choices)``: validated, and a bad value exits 2 naming the key, with
   no change to ``config.py``. (Add a typed ``Settings`` field in ``config.py`` instead when
   a cross-group check needs the value.)
4. Run ``python rules/generate.py`` and commit the regenerated files. ``tests/test_rules.py``
   then wants: ``rules/tests/<name>.yml`` (promtool: each alert firing and silent); the
   group's name in ``group_eval_order`` of every ``rules/tests/*.yml`` that loads
   ``../alerts.yml``; a runbook section per alert and each new key in ``docs/alerts.md``;
   an ``IDENTITY`` entry for a new alert-name prefix.

A new set of recording rules is a module with ``def recording(s) -> list[RecordingGroup]``
appended to ``RECORDING_GROUPS``.

Imports are relative within the package; ``vha.report.rightsizing`` needs the repository root
on ``sys.path``, which ``rules/generate.py`` arranges.
"""
