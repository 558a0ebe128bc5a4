"""The vCenter client both daemons share: the one configuration file, sessions and faults.

The exporter and the remediator talk to the same vCenters with the same credentials rules,
TLS defaults and fault classification; keeping that here (and importing neither daemon)
means a fix to how a session is opened or a fault is read lands in both at once, and the
two daemons never import each other.
"""
