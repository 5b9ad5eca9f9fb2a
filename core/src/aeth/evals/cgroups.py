"""A control group per sandboxed run: memory and process count for the whole run, not per process.

Resource limits (``setrlimit``) bind each process alone: eight children may each take the
address space a run is allowed, System V shared memory is outside it entirely, and the process
cap counts every process of the user. A cgroup counts what every process of the run uses,
shared memory included, and lets the run's processes be killed at once.

:func:`create` makes one under the caller's own cgroup, with cgroup v2 where the host delegates
the ``memory`` and ``pids`` controllers there, else with the v1 ``memory`` and ``pids``
hierarchies where they are writable (root on a host with v1 or hybrid cgroups); where neither is
possible it returns ``None`` and the run falls back to per-process limits, which the result says.
The sandbox's first process joins the group itself (``echo 0 > cgroup.procs``) before anything
else runs, so every process of the run is in it from the start.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass
class RunCgroup:
    """One run's cgroup (or pair of v1 cgroups): where the run joins, how it is limited and killed."""

    kind: str  #: "cgroup v2" or "cgroup v1"
    dirs: list[Path] = field(default_factory=list)

    @property
    def procs(self) -> list[str]:
        """The ``cgroup.procs`` files the run's first process writes ``0`` into, to join."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def peak_memory(self) -> int | None:
        """The most memory the run used at once, in bytes, where the kernel reports it."""
        for d in self.dirs:
            for name in ("memory.peak", "memory.max_usage_in_bytes"):
                try:
                    return int((d / name).read_text())
                except (OSError, ValueError):
                    continue
        return None

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for going over the memory limit."""
        for d in self.dirs:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    fields = dict(line.split() for line in (d / name).read_text().splitlines() if line.strip())
                except (OSError, ValueError):
                    continue
                if int(fields.get(key, 0)):
                    return True
        return False

    def kill_and_remove(self, timeout: float = 5.0) -> None:
        """Kill every process still in the group, then remove the group (once its processes are gone)."""
        for d in self.dirs:
            if (d / "cgroup.kill").exists():
                _write(d / "cgroup.kill", "1")
        deadline = time.monotonic() + timeout
        for d in self.dirs:
            while d.exists() and time.monotonic() < deadline:
                for pid in _pids(d):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    d.rmdir()
                except OSError:  # zombies not yet reaped: a moment more
                    time.sleep(0.005)


def create(memory_bytes: int, processes: int) -> RunCgroup | None:
    """A new cgroup limited to ``memory_bytes`` (every process and its shared memory) and
    ``processes`` tasks, or None where this host lets the caller make none."""
    name = f"aeth-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
    for make in (_v2, _v1):
        group = make(name, memory_bytes, processes)
        if group is not None:
            return group
    return None


def _v2(name: str, memory_bytes: int, processes: int) -> RunCgroup | None:
    mount, own = _v2_mount(), _own_path("")
    if mount is None or own is None:
        return None
    parent = mount / own.lstrip("/")
    try:
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None
    if not {"memory", "pids"} <= enabled:
        return None  # not delegated here (a parent with processes of its own cannot enable them)
    group = parent / name
    try:
        group.mkdir()
        _write(group / "memory.max", str(memory_bytes))
        if (group / "memory.swap.max").exists():
            _write(group / "memory.swap.max", "0")
        _write(group / "pids.max", str(processes))
    except OSError:
        RunCgroup("cgroup v2", [group]).kill_and_remove(0.1)
        return None
    return RunCgroup("cgroup v2", [group])


def _v1(name: str, memory_bytes: int, processes: int) -> RunCgroup | None:
    made: list[Path] = []
    try:
        for controller, setting, value in (("memory", "memory.limit_in_bytes", memory_bytes),
                                           ("pids", "pids.max", processes)):
            own = _own_path(controller)
            if own is None or not (ROOT / controller / "cgroup.procs").exists():
                raise OSError(f"no v1 {controller} hierarchy")
            group = ROOT / controller / own.lstrip("/") / name
            group.mkdir()
            made.append(group)
            _write(group / setting, str(value))
        try:  # memory + swap, where swap is accounted: no escape into swap
            _write(made[0] / "memory.memsw.limit_in_bytes", str(memory_bytes))
        except OSError:
            pass
    except OSError:
        RunCgroup("cgroup v1", made).kill_and_remove(0.1)
        return None
    return RunCgroup("cgroup v1", made)


def _own_path(controller: str) -> str | None:
    """This process's cgroup in the hierarchy of ``controller`` ("" for the v2 one), from /proc/self/cgroup."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (controller == "" and controllers == "") or controller in controllers.split(","):
            return path
    return None


def _v2_mount() -> Path | None:
    """Where the unified (v2) hierarchy is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                left, right = line.split(b" - ", 1)
                if right.split()[0] == b"cgroup2":
                    return Path(os.fsdecode(left.split()[4]))
    except OSError:
        pass
    return None


def _pids(group: Path) -> list[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
