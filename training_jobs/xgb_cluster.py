"""Distributed XGBoost across the instances of one SageMaker training job, with xgboost's own collective.

SageMaker starts the same script on every instance with SM_HOSTS (all host names, e.g. ["algo-1", "algo-2"])
and SM_CURRENT_HOST. As the SageMaker XGBoost container does in its own distributed mode, the first host in
sorted order runs the tracker (xgboost.tracker.RabitTracker, the coordinator that introduces the workers to
each other) on a fixed port (a training instance is single-tenant), and every host, that one included, joins
the communicator (xgboost.collective) as one worker. Ranks follow the sorted host names (sortby="task"), so
rank 0 is the tracker host: it alone writes the model and the checkpoints. Inside the communicator
`xgboost.train`/`Booster.update` allreduce gradient histograms and quantile sketches between the workers, so
each trains on its own S3 shard (ShardedByS3Key) and all end with the same trees.

Network isolation allows this traffic (calls between peers of one training cluster); in network mode `vpc`
the workload security group lets the instances reach each other.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from training_jobs.errors import JobError

T = TypeVar("T")
TRACKER_PORT = 9099  # the port the SageMaker XGBoost container's tracker uses
HOST_RESOLUTION_SECONDS = 300  # instances of a new cluster can take a while to resolve each other's names


@dataclass(frozen=True)
class Cluster:
    hosts: tuple[str, ...]  # sorted
    current: str
    port: int = TRACKER_PORT

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def tracker_host(self) -> str:
        return self.hosts[0]


def cluster_from(hosts: str | None, current: str | None, port: int = TRACKER_PORT) -> Cluster | None:
    """The cluster SM_HOSTS/SM_CURRENT_HOST describe; None (single process) without SM_HOSTS."""
    if not hosts:
        return None
    try:
        names = json.loads(hosts)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(h, str) and h for h in names):
        raise JobError(f"--hosts / SM_HOSTS must be a JSON list of host names, got {hosts!r}")
    if len(set(names)) != len(names):
        raise JobError(f"--hosts / SM_HOSTS lists a host twice: {names}")
    if current is None or current not in names:
        raise JobError(f"--current-host / SM_CURRENT_HOST {current!r} is not one of the hosts {names}")
    if not 0 < port < 65536:
        raise JobError(f"--tracker-port must be a TCP port, got {port}")
    return Cluster(tuple(sorted(names)), current, port)


def _resolve(host: str, deadline: float) -> str:
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError:
            if time.monotonic() > deadline:
                raise JobError(f"cannot resolve the tracker host {host!r}") from None
            time.sleep(1)


@contextmanager
def communicator(cluster: Cluster | None, timeout_s: int = 1800) -> Iterator[None]:
    """Run the body as one worker of `cluster` (a no-op for a single process)."""
    if cluster is None or cluster.size == 1:
        yield
        return
    from xgboost import collective
    from xgboost.tracker import RabitTracker

    address = _resolve(cluster.tracker_host, time.monotonic() + HOST_RESOLUTION_SECONDS)
    tracker = None
    if cluster.current == cluster.tracker_host:
        tracker = RabitTracker(
            n_workers=cluster.size, host_ip=address, port=cluster.port, sortby="task", timeout=timeout_s
        )
        tracker.start()
    # Workers retry while the tracker host is still starting.
    with collective.CommunicatorContext(
        dmlc_communicator="rabit",
        dmlc_tracker_uri=address,
        dmlc_tracker_port=cluster.port,
        dmlc_task_id=cluster.current,
        dmlc_retry=30,
        dmlc_timeout=timeout_s,
    ):
        yield
    if tracker is not None:
        tracker.wait_for(timeout_s)
        tracker.free()


def rank() -> int:
    from xgboost import collective

    return collective.get_rank() if collective.is_distributed() else 0


def world_size() -> int:
    from xgboost import collective

    return collective.get_world_size() if collective.is_distributed() else 1


def broadcast_from_rank0(value: T) -> T:
    """Rank 0's `value` on every worker (the value itself for a single process)."""
    from xgboost import collective

    if not collective.is_distributed():
        return value
    # broadcast() refuses None on the root: wrap the value.
    return collective.broadcast([value], 0)[0]


def gather(value: T) -> list[T]:
    """Every worker's `value`, in rank order (on every worker)."""
    from xgboost import collective

    if not collective.is_distributed():
        return [value]
    # broadcast(data, root) sends root's data (wrapped: None is refused); the others' argument is not used.
    return [collective.broadcast([value], r)[0] for r in range(collective.get_world_size())]
