"""Exactly what goes into a model package's `code/` folder: the endpoint handler and the feature
transformer it imports. Importable with numpy alone (plus torch or xgboost to score): never pandas,
Spark or anything else from this repository.
"""
