"""Domain errors.

Library code raises these; the CLI prints them as one line and the API maps them to HTTP
status codes in one place. Nothing here imports a web framework.
"""

from __future__ import annotations

from collections.abc import Iterable


class ChurnopsError(Exception):
    """Base class of every error churnops reports to a user."""


class DataError(ChurnopsError):
    """A data file or table cannot be used (missing, unreadable, empty, bad target...)."""


class ConfigError(ChurnopsError, ValueError):
    """Settings are missing or contradictory."""


class ArtifactError(ChurnopsError):
    """A model artifact is missing, malformed or fails its integrity check."""


class ArtifactExistsError(ArtifactError):
    """An artifact directory is in the way of a new one that must not replace it."""


class IntegrityError(ArtifactError):
    """An artifact file does not match the sha256 recorded in its manifest."""


class RecordError(ChurnopsError):
    """Records to score do not match the model's schema.

    Parameters
    ----------
    problems
        One entry per problem: ``{"record": index, "field": name, "problem": text}``.
    """

    def __init__(self, problems: list[dict[str, object]]) -> None:
        self.problems = problems
        first = problems[0] if problems else {}
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        where = f"record {first.get('record')}"
        if first.get("field") is not None:
            where += f", field '{first.get('field')}'"
        super().__init__(f"{where}: {first.get('problem')}{more}")


class ExplainError(ChurnopsError):
    """The served model cannot compute feature contributions (the message says why)."""


class LimitError(ChurnopsError):
    """A request exceeds a configured size limit."""


class StartupError(ChurnopsError):
    """A server could not start (the reason has been logged)."""


class StoreError(ChurnopsError):
    """The prediction store cannot be reached or refused a write (the service answers on)."""


def suggestion(given: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'X'?)"`` for the choice closest to ``given`` (case aside), else ``""``."""
    import difflib

    names = list(choices)
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(given.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
