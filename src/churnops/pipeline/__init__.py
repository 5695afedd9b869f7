"""The scikit-learn Pipeline: prepare features, then FLAML AutoML over tree ensembles."""
