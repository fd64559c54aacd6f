"""The code every pipeline job runs, as one deterministic tar.gz: training_jobs/, serving/, dataset/.

Sorted entries, fixed mtime, owner and mode, gzip header without time or name: the same files give
the same bytes, so the CDK asset (content-addressed) only changes when the code does. Jobs unpack it
to /opt/ml/code: Training through the image's toolkit (sagemaker_submit_directory), Processing through
the step's entrypoint. The asset's S3 key keeps only the last suffix (`<hash>.gz`), so nothing that
unpacks it may insist on `.tar.gz`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from infra.runtime_code import REPO_ROOT

# (folder, file patterns) shipped; the job scripts import nothing else from this repository.
PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("training_jobs", ("*.py",)),
    ("serving", ("*.py",)),
    ("dataset", ("*.py", "schemas/*.yaml")),
)
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z
# Where the jobs find the bundle's files once unpacked.
CODE_ROOT = "/opt/ml/code"


def bundle_files(root: Path = REPO_ROOT) -> list[str]:
    """Relative paths of the files in the bundle, sorted."""
    found = {
        path.relative_to(root).as_posix()
        for folder, patterns in PACKAGES
        for pattern in patterns
        for path in (root / folder).glob(pattern)
        if path.is_file()
    }
    return sorted(found)


def build(root: Path = REPO_ROOT) -> bytes:
    """The bundle's bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        directories = sorted({str(Path(f).parent) for f in bundle_files(root)} - {"."})
        for rel in _with_parents(directories):
            tar.addfile(_info(rel, tarfile.DIRTYPE, 0o755))
        for rel in bundle_files(root):
            data = (root / rel).read_bytes()
            info = _info(rel, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(buffer.getvalue())
    return out.getvalue()


def write(target: Path, root: Path = REPO_ROOT) -> tuple[Path, str]:
    """Write the bundle to `target` (left alone when unchanged); returns (path, sha256)."""
    data = build(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target, hashlib.sha256(data).hexdigest()


def _with_parents(directories: list[str]) -> list[str]:
    every = set()
    for d in directories:
        parts = Path(d).parts
        for i in range(1, len(parts) + 1):
            every.add(Path(*parts[:i]).as_posix())
    return sorted(every)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
