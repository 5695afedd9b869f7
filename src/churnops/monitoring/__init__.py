"""Monitoring a served model: drift and data quality of logged traffic against the reference.

Submodules are imported by name (``churnops.monitoring.drift``, ``churnops.monitoring.report``):
this package imports nothing itself, so a light module added here does not pull in pandas.
"""
