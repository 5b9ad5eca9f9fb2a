"""Multi-process training: torchrun, the process group (gloo on CPU, nccl on CUDA), and rank agreement.

:func:`aeth.training.run` with ``plan.nproc > 1`` starts the run under ``torchrun`` (:func:`launch`);
each worker calls :func:`setup`, which joins the process group that torchrun described in the
environment. How the model is shared (DDP, FSDP2, DeepSpeed) is :mod:`aeth.training.engines`. Every
rank sees the whole global batch and trains on its share (:meth:`Dist.shard`), the loss of each
rank is divided by the step's *global* count of trained tokens, so gradients summed over ranks are
those of one process on the same global batch: a run's loss curve does not depend on ``--nproc``.
Rank 0 alone writes checkpoints, metrics and the adapter version; under FSDP the sharded adapter
and optimizer state are gathered first (:meth:`~aeth.training.engines.Engine.full_state`), so a checkpoint is the same file
whatever the number of processes, and any run can resume it.

A Ctrl-C (or torchrun's SIGTERM) does not interrupt a rank in the middle of a collective, which
would leave the others waiting forever: it sets a flag that all ranks agree on at the next step
boundary (:meth:`Dist.stop_requested`), and they save and stop together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

#: set by torchrun in every worker it starts
WORLD_SIZE_ENV = "WORLD_SIZE"
#: the launch file (JSON) of the run each worker joins, see :mod:`aeth.training.worker`
LAUNCH_ENV = "AETH_WORKER_LAUNCH"


def quiet_deepspeed() -> None:
    """Without CUDA, tell DeepSpeed (if installed) its accelerator is the CPU, as it would find
    anyway: transformers imports it on every ``save_pretrained``, and detecting prints a warning
    on stdout."""
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def under_torchrun() -> bool:
    """Whether this process is a worker that torchrun (or another launcher setting WORLD_SIZE) started."""
    return int(os.environ.get(WORLD_SIZE_ENV, "1") or 1) > 1


def launch(nproc: int, launch_file: str) -> int:
    """Run :mod:`aeth.training.worker` as ``nproc`` processes under torchrun on this machine, each
    joining the run that ``launch_file`` describes; return torchrun's exit code.

    This process only waits: Ctrl-C reaches the workers directly (they share the terminal's
    process group), and they save a checkpoint before they stop.
    """
    threads = max(1, (os.cpu_count() or 1) // nproc)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)), LAUNCH_ENV: launch_file}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "aeth.training.worker"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers decide how to stop
    try:
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Dist:
    """This process's place in the job: rank, world size, device, and the stop flag."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"
    _stop: bool = field(default=False, repr=False)

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and talks to the user."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.world > 1

    def shard(self, items: list) -> list:
        """This rank's share of a global batch (every rank gets ``len(items) / world``)."""
        return items[self.rank::self.world]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            import torch.distributed as torch_dist

            torch_dist.barrier()

    def sum(self, *values: float) -> list[float]:
        """``values`` summed over all ranks (float64)."""
        if not self.active:
            return list(values)
        import torch
        import torch.distributed as torch_dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(tensor)
        return tensor.tolist()

    def watch_signals(self) -> None:
        """From now on SIGINT and SIGTERM only ask every rank to stop at the next step boundary."""
        if not self.active:
            return

        def request(signum, frame):
            self._stop = True

        signal.signal(signal.SIGINT, request)
        signal.signal(signal.SIGTERM, request)

    def stop_requested(self) -> bool:
        """Whether any rank was asked to stop (a collective: every rank calls it at the same point)."""
        if not self.active:
            return False
        return self.sum(1.0 if self._stop else 0.0)[0] > 0

    def rng_states(self) -> list[list[int]]:
        """Every rank's torch CPU RNG state, gathered (rank order), to checkpoint them all."""
        import torch

        state = torch.get_rng_state()
        if not self.active:
            return [state.tolist()]
        import torch.distributed as torch_dist

        gathered = [torch.empty_like(state) for _ in range(self.world)]
        torch_dist.all_gather(gathered, state)
        return [g.tolist() for g in gathered]

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (a small picklable object between this job's own processes), on every rank."""
        if not self.active:
            return value
        import torch.distributed as torch_dist

        box = [value]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]


def setup() -> Dist:
    """Join the process group torchrun described (gloo on CPU, nccl on CUDA); one process otherwise."""
    if not under_torchrun():
        return Dist()
    import torch
    import torch.distributed as torch_dist

    rank, world = int(os.environ["RANK"]), int(os.environ[WORLD_SIZE_ENV])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device)


def teardown(dist: Dist) -> None:
    """Leave the process group (so the job ends without warnings)."""
    if dist.active:
        import torch.distributed as torch_dist

        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def unwrap(model: Any) -> Any:
    """The module inside a DDP wrapper (FSDP2 shards in place and has none)."""
    return getattr(model, "module", model)


def trainable_named(model: Any) -> list[tuple[str, Any]]:
    """(name, parameter) of every trainable parameter, named as in the unwrapped model."""
    return [(n, p) for n, p in unwrap(model).named_parameters() if p.requires_grad]


def launched_by_aeth() -> bool:
    """Whether this process is a worker that :func:`launch` started (its parent then reports the
    run and runs the promotion gate; a torchrun started by hand has no such parent)."""
    return under_torchrun() and bool(os.environ.get(LAUNCH_ENV))
