"""The code sandbox: model-written code runs only here, in a separate, fenced-off process.

:func:`run_python` runs a Python program with, all at once:

- **no network**: a fresh network namespace (only a loopback interface, down);
- **no way to harm the host's files**: a fresh mount namespace in which every filesystem is
  remounted read-only, secrets in home directories (``.ssh``, ``.aws``, ``.gnupg``, ...) are
  hidden under empty mounts, and ``/tmp`` is a private, size-capped tmpfs holding the program's
  working directory; the program runs without any capability (securebits ``noroot`` locked, an
  empty bounding set, ``no_new_privs``), and as user ``nobody`` when aeth itself runs as root;
- **limits**: wall-clock and CPU time, address space (memory), file size, open files, a cap on
  processes (fork bombs), and on output size (the process is killed once it prints too much);
- **nothing inherited**: a clean environment (no API keys or tokens), Python in isolated mode;
- **nothing left behind**: a fresh PID namespace; when its first process ends, or the sandbox is
  killed, the kernel ends every process in it.

It is built from Linux namespaces with util-linux's ``unshare`` and ``setpriv`` (present on
every mainstream distribution) and works for root and ordinary users (through a user
namespace). Where any piece is missing, :class:`SandboxUnavailable` says what and how to fix it:
there is no unsafe fallback and no switch to run code without the sandbox.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from aeth.errors import AethError
from aeth.evals import cgroups

BOOT = Path(__file__).with_name("_sandbox_boot.py")
HARNESS = Path(__file__).with_name("_sandbox_harness.py")  #: main module of a graded run (run_tests)
MARKER = "aeth-sandbox-checked:"  #: what the harness prints before the nonce (as _sandbox_harness.MARKER)
NOBODY = 65534  #: who runs the program when aeth itself runs as root


class SandboxUnavailable(AethError):
    """This system cannot provide the sandbox (so no generated code is run at all)."""


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 1024  #: address space; Python itself needs ~30 MB
    disk_mb: int = 64  #: size of the private /tmp
    file_mb: int = 16  #: largest file it may write
    processes: int = 16  #: processes and threads it may have at once (beyond the user's current count)
    output_bytes: int = 1 << 20  #: stdout + stderr; killed beyond this
    open_files: int = 64
    unix_sockets: bool = False  #: may it create UNIX sockets (socketpair between its own processes always works)


@dataclass
class SandboxResult:
    """How a sandboxed run ended: ``status`` is ``ok``, ``error`` (non-zero exit), ``timeout``
    (wall clock), ``killed`` (a signal: CPU or memory limit), or ``output_limit``."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    #: what bounded the run as a whole: "cgroup v2" or "cgroup v1" (memory of every process, shared
    #: memory included, and the process count, for the whole run), or "per-process limits" where
    #: the host allows no cgroup (each process alone is bounded; see docs/sandbox.md)
    enforcement: str = ""
    peak_memory_mb: float | None = None  #: the most memory the run held at once, where a cgroup measured it

    @property
    def ok(self) -> bool:
        """Exited 0 within every limit."""
        return self.status == "ok"


def check_available() -> None:
    """Raise :class:`SandboxUnavailable` unless this system can run the sandbox."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(
            f"the code sandbox needs Linux namespaces and this is {sys.platform}; run code evals on Linux "
            "(a container or VM works) - aeth never runs generated code without the sandbox")
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            raise SandboxUnavailable(f"the code sandbox needs `{tool}` from util-linux, which is not on PATH; "
                                     "install util-linux (e.g. `apt-get install util-linux`)")


@functools.cache
def _seccomp() -> dict:
    """Where pyseccomp is (the boot script, which sees only the standard library, adds it to its
    path) and the libraries it loads, found once per process."""
    import ctypes.util
    import importlib.util

    found = importlib.util.find_spec("pyseccomp")
    if found is None or found.origin is None:
        raise SandboxUnavailable("the code sandbox needs the Python package pyseccomp for its system-call filter: "
                                 "pip install pyseccomp")
    libraries = {name: ctypes.util.find_library(name) for name in ("c", "seccomp")}
    if libraries["seccomp"] is None:
        raise SandboxUnavailable("the code sandbox's system-call filter needs the system library libseccomp "
                                 "(e.g. `apt-get install libseccomp2`)")
    return {"dir": os.path.dirname(found.origin), "libraries": libraries}


def _command(limits: Limits) -> list[str]:
    flags = ["--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--ipc", "--uts"]
    if os.geteuid() != 0:
        flags = ["--user", "--map-root-user", *flags]  # ordinary users get their namespaces through a user namespace
    return [shutil.which("unshare") or "unshare", *flags, "--", sys.executable, "-I", "-S", str(BOOT)]


def run_python(code: str, limits: Limits | None = None, stdin: str = "", *, files: dict[str, str] | None = None,
               secret: str | None = None) -> SandboxResult:
    """Run the Python program ``code`` in the sandbox and return how it ended.

    ``stdin`` is fed to the program. The program's working directory is private and holds only
    ``files`` (name -> text) besides the program; only the standard library is importable.
    ``secret`` is readable once on file descriptor 3 (how :func:`run_tests`' harness learns the
    nonce that proves the checks completed).
    """
    check_available()
    limits = limits or Limits()
    group = cgroups.create(limits.memory_mb * 1024 * 1024, limits.processes)
    try:
        result = _run(code, limits, stdin, files, secret, group)
    finally:
        peak = group.peak_memory() if group is not None else None
        if group is not None:
            group.kill_and_remove()
    return replace(result, enforcement=group.kind if group is not None else "per-process limits",
                   peak_memory_mb=None if peak is None else round(peak / 2**20, 1))


def _run(code: str, limits: Limits, stdin: str, files: dict[str, str] | None, secret: str | None,
         group: cgroups.RunCgroup | None) -> SandboxResult:
    as_root = os.geteuid() == 0
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)  # not a venv: stdlib only
    spec = json.dumps({"code": code, "stdin": stdin, "files": files or {}, "secret": secret,
                       "limits": limits.__dict__, "python": python,
                       "prefix": sys.base_prefix, "setpriv": shutil.which("setpriv"), "as_root": as_root,
                       "seccomp": _seccomp(), "cgroup_procs": group.procs if group is not None else [],
                       # RLIMIT_NPROC counts nobody's processes host-wide; in a new user namespace, only its own
                       "nproc_base": tasks_of(NOBODY) if as_root else 0})
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    started = time.monotonic()
    try:
        proc = subprocess.Popen(_command(limits), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd="/", start_new_session=True)
    except OSError as e:
        raise SandboxUnavailable(f"could not start the code sandbox: {e}") from e
    proc.stdin.write(spec.encode())
    proc.stdin.close()
    out, err, status = _collect(proc, limits, started)
    returncode = proc.returncode
    seconds = time.monotonic() - started
    stderr = err.decode("utf-8", "replace")
    # unshare relays a child's death by signal by re-raising it on itself; for SIGXCPU (the CPU
    # limit) that fails, and it exits 1 saying so on stderr
    relayed = "unshare: sigprocmask unblock failed" in stderr
    if relayed:
        stderr = "\n".join(line for line in stderr.splitlines() if not line.startswith("unshare: "))
    if status is None:
        if returncode == 0:
            status = "ok"
        elif relayed or returncode < 0 or returncode in (128 + signal.SIGKILL, 128 + signal.SIGXCPU):
            status = "killed"
        else:
            status = "error"
        if "aeth-sandbox: setup failed:" in stderr:
            raise SandboxUnavailable(stderr.split("aeth-sandbox: setup failed:", 1)[1].strip().splitlines()[0])
    return SandboxResult(status, returncode, out.decode("utf-8", "replace"), stderr, seconds)


def run_tests(program: str, checks: str, limits: Limits | None = None) -> SandboxResult:
    """Run ``program`` and then ``checks`` (code that raises when the program is wrong) in one
    sandboxed interpreter; ``ok`` only when the checks ran to their end.

    A clean exit is not a pass: a harness prints a nonce, fresh for every run, after the checks
    complete, and only a run whose output carries it has status ``ok``. A program that exits
    early (``SystemExit``, ``os._exit``), or whose checks raise, ends with status ``error``; one
    that reaches for the harness's frame, the garbage collector's object lists, ``ctypes``,
    ``/proc`` or a new program is stopped at once (status ``error``). The checks see the builtins
    as they were before the program ran. Every suite that executes code grades through this.
    """
    nonce = secrets.token_hex(16)
    result = run_python(HARNESS.read_text(encoding="utf-8"), limits, files={"program.py": program, "checks.py": checks},
                        secret=nonce)
    stamp = f"{MARKER}{nonce}"
    checked = stamp in result.stdout.splitlines()
    stdout = "\n".join(line for line in result.stdout.splitlines() if line != stamp)
    if result.status == "ok" and not checked:
        return replace(result, status="error", stdout=stdout,
                       stderr=result.stderr + "\naeth-sandbox: the program exited before its checks completed\n")
    return replace(result, stdout=stdout)


def tasks_of(uid: int) -> int:
    """How many tasks (threads count: RLIMIT_NPROC counts them) user ``uid`` has now."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue  # gone meanwhile
        if int(fields.get("Uid", "-1 ").split()[0]) == uid:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


def _collect(proc: subprocess.Popen, limits: Limits, started: float) -> tuple[bytes, bytes, str | None]:
    """Read stdout and stderr until the process ends, the wall clock runs out or output overflows."""
    chunks = {proc.stdout: [], proc.stderr: []}
    total = 0
    status = None
    sel = selectors.DefaultSelector()
    for stream in chunks:
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    try:
        while sel.get_map():
            remaining = limits.wall_seconds - (time.monotonic() - started)
            if remaining <= 0:
                status = "timeout"
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                data = key.fileobj.read(65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                chunks[key.fileobj].append(data)
                total += len(data)
            if total > limits.output_bytes:
                status = "output_limit"
                break
    finally:
        sel.close()
        if status is not None or proc.poll() is None:
            _kill(proc)
        proc.wait()
        for stream in chunks:
            stream.close()
    out, err = (b"".join(chunks[s]) for s in (proc.stdout, proc.stderr))
    return out[: limits.output_bytes], err[: limits.output_bytes], status


def _kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox and return once every process in it is gone.

    The PID namespace's first process (unshare's child) is killed by its host PID: the kernel then
    ends every other process in the namespace before that one finishes exiting, so once it is a
    zombie or gone, nothing of the run is left. Signalling unshare's process group is not enough:
    the program may leave it with ``setsid``, and once it runs as ``nobody`` the kernel has cleared
    the parent-death signal ``--kill-child`` relies on.
    """
    inits = _children(proc.pid)
    for pid in inits:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while inits and time.monotonic() < deadline:
        inits = [pid for pid in inits if _alive(pid)]
        if inits:
            time.sleep(0.01)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
