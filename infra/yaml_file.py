"""Reading one YAML settings file with errors a person can act on: one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import yaml

# libyaml's safe loader where PyYAML was built with it (the same documents, about ten times faster).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, error: type[Exception], missing: str = "file not found") -> object:
    """The parsed content of `path`; `error` with one line when the file is missing or is not YAML."""
    try:
        return yaml.load(path.read_text(), Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}") from None
