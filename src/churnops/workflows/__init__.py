"""Use cases: what a command does, without the command line.

Each module is one use case the CLI (and any other front end) calls in a few lines:
:mod:`~churnops.workflows.models` resolves and loads a model (a directory or a registry
reference), :mod:`~churnops.workflows.training` trains, exports and records a model,
:mod:`~churnops.workflows.serving` checks a service's settings, loads its model and runs it under
uvicorn, :mod:`~churnops.workflows.scoring` scores a file in batches of rows. Nothing here
prints; errors are :class:`churnops.errors.ChurnopsError` subclasses.
"""
