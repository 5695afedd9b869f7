"""The HTTP API: :func:`churnops.api.app.create_app` builds the FastAPI application.

Nothing is imported here, so a worker process can set up Prometheus' multiprocess mode (see
:mod:`churnops.workflows.serving`) before :mod:`churnops.api.metrics` imports its client.
"""
