#!/usr/bin/env python3
"""Fail when a pin in requirements*.txt is missing from the lock or differs from it (stdlib only).

    python3 tools/check_lock.py requirements-dev.txt requirements-dev.lock

Follows `-r` includes. A pin without a local version label matches a locked local version
(`torch==2.13.0` matches `torch==2.13.0+cpu`), as in PEP 440.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, tuple[str, str]]:
    """{normalised name: (version, file)} for every `name==version` line, following `-r file`."""
    found: dict[str, tuple[str, str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            found.update(pins(path.parent / line.split(maxsplit=1)[1]))
        elif match := PIN.match(line):
            found[normalise(match[1])] = (match[2], path.name)
    return found


def main(requirements: str, lock: str) -> int:
    wanted = pins(Path(requirements))
    locked = {name: version for name, (version, _) in pins(Path(lock)).items()}
    problems = []
    for name, (version, source) in sorted(wanted.items()):
        have = locked.get(name)
        if have is None:
            problems.append(f"{source} pins {name}=={version}, {lock} lacks it")
        elif have != version and have.split("+", 1)[0] != version:
            problems.append(f"{source} pins {name}=={version}, {lock} has {have}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{lock} is out of date: run `make lock` and commit it", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
