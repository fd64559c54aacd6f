"""Checkpoints for managed spot training: what a training job saves while it runs and resumes from.

SageMaker copies CheckpointConfig.LocalPath (/opt/ml/checkpoints) to CheckpointConfig.S3Uri while the job
runs and, when a spot interruption restarts the job, copies it back into every instance before the script
starts. A job therefore saves its whole state there now and then and, on start, resumes from the newest
checkpoint that belongs to the same run.

A checkpoint is one `<job>-<sequence>.npz` file (numpy's zip format: CRC-checked, read without pickle): a
JSON header (`meta`, which includes the run `key`) and named binary blobs (boosters, state dicts). It is
written under a temporary name and renamed, so a reader never sees half a file under a checkpoint name; a
file that is unreadable anyway (an interrupted upload) is skipped for the one before it. The run key is a
digest of everything the result depends on (hyperparameters, data, workers): a checkpoint from another
configuration, for example an older execution's under the same prefix, is ignored and the job starts over.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINT_DIR = "/opt/ml/checkpoints"
_META = "__meta__"


@dataclass(frozen=True)
class Checkpoint:
    meta: dict[str, Any]
    blobs: dict[str, bytes]
    path: Path


def run_key(job: str, settings: dict[str, Any], arrays: Iterable[np.ndarray] = ()) -> str:
    """Digest of a run: the job, its settings (JSON-able) and the bytes of its input arrays."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps({"job": job, "settings": settings}, sort_keys=True, default=str).encode())
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.data)
    return digest.hexdigest()


def resolve_dir(explicit: str | None) -> Path | None:
    """--checkpoint-dir when given (created), else /opt/ml/checkpoints where SageMaker provides it, else none."""
    if explicit:
        return Path(explicit)
    default = Path(CHECKPOINT_DIR)
    return default if default.is_dir() else None


class CheckpointStore:
    """Numbered checkpoints of one job in one directory; keeps the newest `keep` files."""

    def __init__(self, directory: Path | None, job: str, key: str, keep: int = 2):
        self.directory = directory
        self.job = job
        self.key = key
        self.keep = keep
        self._pattern = re.compile(rf"^{re.escape(job)}-(\d{{8}})\.npz$")
        self._next = 1 + max((n for n, _ in self._numbered()), default=0)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def _numbered(self) -> list[tuple[int, Path]]:
        if self.directory is None or not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = self._pattern.match(path.name)
            if match and path.is_file():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def save(self, meta: dict[str, Any], blobs: dict[str, bytes]) -> Path | None:
        """Write the next checkpoint (no-op when disabled) and drop all but the newest `keep`."""
        if self.directory is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {_META: np.frombuffer(json.dumps({**meta, "key": self.key}).encode(), dtype=np.uint8)}
        arrays.update({name: np.frombuffer(blob, dtype=np.uint8) for name, blob in blobs.items()})
        path = self.directory / f"{self.job}-{self._next:08d}.npz"
        tmp = self.directory / f".{path.name}.partial"
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        self._next += 1
        for _, old in self._numbered()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> Checkpoint | None:
        """The newest readable checkpoint of this run (same key), or None."""
        for _, path in reversed(self._numbered()):
            try:
                with np.load(path, allow_pickle=False) as data:
                    meta = json.loads(bytes(data[_META]).decode())
                    blobs = {name: bytes(data[name]) for name in data.files if name != _META}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
                print(
                    f"{self.job}: checkpoint {path.name} is unreadable ({type(exc).__name__}); trying an older one",
                    file=sys.stderr,
                )
                continue
            if meta.get("key") != self.key:
                print(
                    f"{self.job}: checkpoint {path.name} belongs to another run (settings or data differ); "
                    "starting over",
                    file=sys.stderr,
                )
                return None
            return Checkpoint(meta, blobs, path)
        return None


def torch_bytes(obj: Any) -> bytes:
    """A state dict (tensors, numbers, lists) as bytes; read back with `torch_object`."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def torch_object(blob: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(blob), weights_only=True)
