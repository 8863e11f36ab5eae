"""Training in several processes at once (``torchrun``), one model replica per process.

``torchrun --nproc_per_node=N -m explorer train …`` starts N processes and tells each its place in
the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``). :func:`from_environment` reads them; without them a run is one process and none
of this is used. Processes talk through ``torch.distributed``: gloo on CPUs, NCCL on CUDA GPUs.

How a batch is divided: every process builds the same list of batches (same corpus, same seed);
process ``r`` of ``W`` trains on sentences ``r, r+W, r+2W, …`` of each batch. Its loss is the sum of
its target tokens' losses times ``W`` over the whole batch's target-token count, and
DistributedDataParallel averages the gradients over the ``W`` processes, so the update is the
one-process update of the same batch up to the order of floating-point sums.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from explorer.seq2seq.messages import first_line
from explorer.seq2seq.training.options import TrainingError, pick_device

TIMEOUT_VARIABLE = "ATTENTION_EXPLORER_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0  # rank 0 evaluates and saves while the others wait: allow for that


class PeerLost(TrainingError):
    """Another process of the run failed, stopped or stopped answering."""


def _environment_int(env: dict[str, str], name: str, default: int | None = None) -> int:
    value = env.get(name)
    if value is None:
        if default is None:
            raise TrainingError(f"distributed run: the environment variable {name} is not set")
        return default
    try:
        return int(value)
    except ValueError:
        raise TrainingError(
            f"distributed run: {name}={value!r} in the environment is not a whole number"
        ) from None


def _timeout(env: dict[str, str]) -> float:
    value = env.get(TIMEOUT_VARIABLE)
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise TrainingError(f"{TIMEOUT_VARIABLE}={value!r}: expected a positive number of seconds")
    return seconds


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run. The default is a run of one process: every collective
    operation returns its input unchanged, and nothing is started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes the checkpoint."""
        return self.rank == 0

    # -- setup --------------------------------------------------------------------------------
    def device(self, name: str) -> torch.device:
        """The device for ``name`` (as :func:`pick_device`); with several processes, each CUDA
        process takes the GPU numbered by its local rank unless the name gives one."""
        dev = pick_device(name)
        if not self.active:
            return dev
        if dev.type == "mps":
            raise TrainingError(
                "distributed training runs on CPUs (gloo) or CUDA GPUs (NCCL), not on Apple MPS: "
                "use --device cpu"
            )
        if dev.type == "cuda":
            dev = torch.device("cuda", self.local_rank if dev.index is None else dev.index)
            torch.cuda.set_device(dev)
        return dev

    def default_threads(self) -> int:
        """torch threads per process when none are asked for: the machine's cores shared between
        the processes on it (0, torch's own default, for a run of one process)."""
        if not self.active:
            return 0
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, cores // max(1, self.local_world_size))

    def start(self, device: torch.device) -> bool:
        """Join the process group (``env://``: torchrun's variables); True if this call did."""
        if not self.active or dist.is_initialized():
            return False
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(
                backend,
                init_method="env://",
                rank=self.rank,
                world_size=self.world_size,
                timeout=timedelta(seconds=self.timeout_s),
            )
        except (RuntimeError, ValueError) as e:
            raise PeerLost(
                f"rank {self.rank}: could not join the {self.world_size} training processes "
                f"({backend}): {first_line(e)}"
            ) from None
        return True

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``module`` itself, or wrapped in DistributedDataParallel (gradients averaged)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # -- the data ------------------------------------------------------------------------------
    def shard(self, batch: list[int]) -> list[int]:
        """This process's sentences of a batch: ``batch[rank::world_size]``."""
        return batch[self.rank :: self.world_size]

    # -- collective operations -----------------------------------------------------------------
    def total(self, *values: float, device: torch.device | None = None) -> list[float]:
        """The sums of ``values`` over all processes (every process must call this)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        try:
            dist.all_reduce(t)
        except (RuntimeError, ValueError) as e:
            raise self.lost(e) from None
        return t.tolist()

    def any(self, flag: bool, device: torch.device | None = None) -> bool:
        """True on every process if ``flag`` is true on any."""
        return self.total(float(flag), device=device)[0] > 0

    def broadcast_bytes(self, data: bytes | None, device: torch.device | None = None) -> bytes:
        """Rank 0's ``data`` on every process (as bytes, never pickled)."""
        if not self.active:
            assert data is not None
            return data
        size = torch.tensor([len(data) if self.is_main else 0], dtype=torch.long, device=device)
        try:
            dist.broadcast(size, src=0)
            if self.is_main:
                buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
            else:
                buf = torch.empty(int(size), dtype=torch.uint8, device=device)
            dist.broadcast(buf, src=0)
        except (RuntimeError, ValueError) as e:
            raise self.lost(e) from None
        return bytes(buf.cpu().numpy().tobytes())

    def lost(self, error: BaseException) -> PeerLost:
        return PeerLost(
            f"rank {self.rank} of {self.world_size}: lost contact with the other training "
            f"processes (one failed, was stopped, or did not answer within {self.timeout_s:g} s; "
            f"its own message says why): {first_line(error)}"
        )


def from_environment(env: dict[str, str] | None = None) -> Distributed:
    """This process's place, from torchrun's variables; one process when they are absent."""
    env = dict(os.environ if env is None else env)
    world = _environment_int(env, "WORLD_SIZE", 1)
    if world <= 1:
        return Distributed()
    rank = _environment_int(env, "RANK")
    local_world = _environment_int(env, "LOCAL_WORLD_SIZE", world)
    local_rank = _environment_int(env, "LOCAL_RANK", rank)
    if not 0 <= rank < world or not 0 <= local_rank < local_world:
        raise TrainingError(
            f"distributed run: RANK={rank} of WORLD_SIZE={world}, LOCAL_RANK={local_rank} of "
            f"LOCAL_WORLD_SIZE={local_world} is not a place in the run"
        )
    return Distributed(rank, world, local_rank, local_world, _timeout(env))
