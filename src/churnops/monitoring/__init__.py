"""Monitoring a served model: the prediction log, ground truth, drift and performance.

The API imports :mod:`churnops.monitoring.store` only (SQLAlchemy and orjson, nothing of the
training stack). The other submodules (``labels``, ``window``, ``drift``, ``report``,
``performance``) read data frames and are for commands and use cases. This package imports
nothing itself, so importing the store does not pull in pandas.
"""
