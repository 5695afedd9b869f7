"""MLflow-backed tracking, model registry and reproducibility.

MLflow is imported only when these functions run, never by the serving path.
"""
