"""Monitoring: the prediction log (what was served, and later the truth about it).

The API imports :mod:`churnops.monitoring.store` only (SQLAlchemy and orjson, nothing of the
training stack); the rest (labels from files) is for commands.
"""
