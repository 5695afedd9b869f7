"""What a running AutoML search has done so far, read from FLAML's logger as the search goes.

FLAML reports each finished trial on its ``flaml.automl.logger`` at INFO level (the learner's
and the search's best error so far). :func:`follow_search` listens there for the length of a
fit and hands a :class:`SearchProgress` to a callback after every trial. Listening changes
nothing the search does: only the logger's level and handlers are touched.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from flaml.automl.ml import is_min_metric

FLAML_LOGGER = "flaml.automl.logger"
# FLAML's fit sets its logger's level from ``verbose``: 3 is INFO, where trials are reported.
FLAML_INFO_VERBOSITY = 3
_TRIAL_DONE = re.compile(
    r"at (?P<at>[\d.]+)s,\s*estimator (?P<learner>\S+)'s best error=(?P<learner_loss>\S+),"
    r"\s*best estimator (?P<best>\S+)'s best error=(?P<best_loss>\S+)"
)


@dataclass(frozen=True)
class SearchProgress:
    """The search so far: trials finished, the best score (in ``metric``'s own terms), time."""

    metric: str
    trials: int = 0
    best_estimator: str | None = None
    best_loss: float | None = None
    elapsed: float = 0.0

    @property
    def best_score(self) -> float | None:
        """The best trial's ``metric`` (FLAML minimises 1 - score for metrics to maximise)."""
        if self.best_loss is None:
            return None
        return self.best_loss if is_min_metric(self.metric) else 1.0 - self.best_loss


class _TrialHandler(logging.Handler):
    def __init__(self, metric: str, listener: Callable[[SearchProgress], None]) -> None:
        super().__init__(logging.INFO)
        self.listener = listener
        self.started = time.monotonic()
        self.progress = SearchProgress(metric)

    def emit(self, record: logging.LogRecord) -> None:
        match = _TRIAL_DONE.search(record.getMessage())
        if match is None:
            return
        try:
            loss = float(match["best_loss"])
        except ValueError:
            loss = None
        self.progress = replace(
            self.progress,
            trials=self.progress.trials + 1,
            best_estimator=match["best"],
            best_loss=loss if loss is not None and loss == loss else self.progress.best_loss,
            elapsed=time.monotonic() - self.started,
        )
        self.listener(self.progress)


@contextmanager
def follow_search(
    metric: str,
    listener: Callable[[SearchProgress], None] | None,
    echo: logging.Handler | None = None,
) -> Iterator[None]:
    """Within the block, call ``listener`` after every FLAML trial; ``echo`` gets FLAML's log.

    Fit with ``verbose=FLAML_INFO_VERBOSITY`` (:func:`churnops.pipeline.build.automl_fit_params`
    does) so that FLAML logs its trials. With a handler of ours attached, FLAML adds no console
    handler of its own: its log is shown only through ``echo``.
    """
    logger = logging.getLogger(FLAML_LOGGER)
    handlers: list[logging.Handler] = [logging.NullHandler()]
    if listener is not None:
        handlers.append(_TrialHandler(metric, listener))
    if echo is not None:
        handlers.append(echo)
    saved = logger.handlers[:]
    logger.handlers[:] = handlers
    try:
        yield
    finally:
        logger.handlers[:] = saved
