"""How many CPU threads torch uses: chosen deliberately, because its default hurts small models.

Measured on this project's reference machine (2 vCPUs, torch 2.13 CPU, bf16, ``model.generate``
greedy, batch 1, 48-64 new tokens, best of 3, tokens per second):

============  =========  ==========================
parameters    1 thread   2 threads
============  =========  ==========================
38 K          ~1200      36-1190 (erratic)
1.1 M         ~480       420-480
6.4 M         ~265       11-300 (erratic)
25 M          ~130       3-180 (erratic)
68 M          ~50        ~75
135 M         ~18.7      ~27.8; ~1 while the other core was busy
============  =========  ==========================

(SmolLM2-135M was measured earlier at ~60 vs ~103 with a leaner decode loop; ``generate`` adds
per-step overhead. The ratio is what matters here.)

Below about 20 M parameters every op takes microseconds, so the cost of waking and joining a
second OpenMP thread dominates: two threads never help by more than ~10 % there, and whenever the
other core is briefly busy (another process, kernel writeback after saving a model) they collapse
by up to 30x, because every op waits for the late thread. From a few tens of millions of
parameters up, the matmuls are big enough for the extra cores to pay (+50 %). Hence ``auto``: one
thread below :data:`SMALL_MODEL_PARAMS`, and above it the usable cores that are idle when the
model loads (:func:`idle_cores`: cores already busy with other work, by the load average, are
left out). The collapse can still hit a run that other work joins later; pin
``model.threads: 1`` on a shared machine.
"""

from __future__ import annotations

import os

#: Models with fewer parameters than this run on one thread under ``model.threads: auto``.
SMALL_MODEL_PARAMS = 20_000_000
#: ``auto`` never asks for more threads than this: beyond it the decode loop of a small model is
#: memory-bound and more threads only add synchronisation.
MAX_AUTO_THREADS = 16

_applied: int | None = None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers restrict)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def choose_threads(n_params: int, setting: str | int = "auto") -> int:
    """The number of torch CPU threads for a model of ``n_params`` parameters.

    ``setting`` is the ``model.threads`` config value: an explicit integer always wins; ``"auto"``
    gives 1 for models below :data:`SMALL_MODEL_PARAMS` and otherwise the usable cores, capped
    at :data:`MAX_AUTO_THREADS` (see the module docstring for the measurements behind this).
    """
    if setting != "auto":
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
            raise ValueError(f"model.threads must be 'auto' or a positive integer, got {setting!r}")
        return setting
    if n_params < SMALL_MODEL_PARAMS:
        return 1
    return min(idle_cores(), MAX_AUTO_THREADS)


def idle_cores() -> int:
    """Usable cores minus those other work keeps busy (the 1-minute load average), at least 1.

    Threads that must wait for a core another process holds stall every op (the collapse in the
    module docstring: ~1 tok/s instead of ~19 for SmolLM2-135M with the other core busy), so a
    busy core is not counted. The load average speaks for the whole machine, so it is used only
    when this process may run on every core (no affinity mask narrower than the machine).
    """
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return cores
    if cores != (os.cpu_count() or cores):
        return cores
    return max(1, min(cores, cores - int(load + 0.25)))


def apply_threads(n: int) -> int:
    """Set torch's intra-op thread count to ``n`` (a no-op when it already is); return ``n``.

    Only the intra-op pool is set: torch allows the inter-op pool to be sized once, before any
    parallel work, which a library cannot guarantee.
    """
    global _applied
    import torch

    if _applied != n or torch.get_num_threads() != n:
        torch.set_num_threads(n)
        _applied = n
    return n
