"""The dataset contract shared by every layer: schema model, schema files and where data comes from.

`dataset.schema` needs only the standard library (it ships to Glue and into model packages);
`dataset.sources` loads a schema's declared source with pandas (twin, tests, benchmarks).
"""
