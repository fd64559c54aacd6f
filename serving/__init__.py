"""Exactly what goes into a model package's `code/` folder: the endpoint handler (inference.py) and
the modules it imports (record_validation, transform, feature_values), listed in
training_jobs.compile_model.CODE_FILES. Importable with numpy alone (plus torch or xgboost to score):
never pandas, Spark or anything else from this repository. Each module imports its siblings both
ways: `from serving import x` in this repository, plain `import x` inside code/.
"""
