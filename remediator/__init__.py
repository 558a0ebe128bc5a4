"""The webhook remediator: Alertmanager alerts in, vSphere HA-style restarts out.

See docs/remediator.md.  Entry points: :func:`remediator.app.run` and
:func:`remediator.app.create_app`.
"""
