"""The fast, data-only scoring path used by the server and by batch scoring.

No pandas, scikit-learn or pickle on the records path: records are encoded straight from the
layout learned at export, and the trees are evaluated from data files (see ``runtime``).
"""

from churnops.inference.scorer import FastScorer, PipelineScorer, Scorer, Scores, load_scorer

__all__ = ["FastScorer", "PipelineScorer", "Scorer", "Scores", "load_scorer"]
