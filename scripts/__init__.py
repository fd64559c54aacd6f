"""Operator scripts: run as files (python scripts/<name>.py) or imported (the twin uses the smoke client)."""
