"""The fast, data-only scoring path used by the server and by batch scoring (serve time only).

No pandas, scikit-learn or pickle on the records path: records are encoded straight from the
layout learned at export (``layout``), and the model is evaluated by a runtime from its data
file (``runtime``: one class per runtime, all registered in ``RUNTIMES``). Converting a fitted
pipeline into a runtime's file is export-time work: :mod:`churnops.pipeline.export`.
"""

from churnops.inference.runtime import RUNTIMES, Runtime
from churnops.inference.scorer import (
    Explanation,
    FastScorer,
    PipelineScorer,
    Scorer,
    Scores,
    load_scorer,
)

__all__ = [
    "RUNTIMES",
    "Explanation",
    "FastScorer",
    "PipelineScorer",
    "Runtime",
    "Scorer",
    "Scores",
    "load_scorer",
]
