"""Monthly cost per environment, estimated offline from the synthesized templates, the environment files and a
dated, cited price table (prices.yaml). `make cost` / `python -m infra.cost`; docs/cost.md.

Plain Python reading JSON and YAML: no CDK import, no AWS call.
"""
