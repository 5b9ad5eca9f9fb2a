"""The grading harness: runs ``program.py`` then ``checks.py`` and, only if both complete, prints the
run's nonce (see :func:`aeth.evals.sandbox.run_tests`). It is the sandboxed program's main module.

The nonce arrives on file descriptor 3, which is read and closed before any graded code runs, and
it lives only in a local variable of :func:`main`. Graded code therefore cannot print it first:
exiting early (``SystemExit``, ``os._exit``) leaves no nonce, and the ways into this frame or
this process's memory are closed before the graded code starts. The process is made non-dumpable
(no other process may read its memory), and an audit hook, which Python offers no way to remove,
refuses graded code a frame (``sys._getframe``, ``tb_frame``... raise ``ValueError``, as where
frames are unsupported), the garbage collector's object lists, tracing, ``ctypes``, ``/proc`` and
new programs (``PermissionError``). Graded code gets a namespace of its own, never this module's.
"""

import os
import sys

MARKER = "aeth-sandbox-checked:"
#: frames lead to the harness's own frame, where the nonce is: refused with ValueError, the error
#: Python gives where frames are unsupported (so typing's TypeVar, which asks for one, still works)
FRAMES = frozenset({"sys._getframe", "sys._current_frames", "sys._current_exceptions"})
FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
#: ways into this process's memory or around it: refused with PermissionError
FORBIDDEN = frozenset({
    "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at",
    "ctypes.call_function", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.fork",
    "os.forkpty", "pty.spawn",
})


def _arm() -> None:
    """Make this process's memory unreadable to others and install the (unremovable) audit hook."""
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: /proc/<pid>/mem and ptrace refused

    def guard(event, args):
        if event in FRAMES or (event == "object.__getattr__" and len(args) > 1 and args[1] in FRAME_ATTRIBUTES):
            raise ValueError("frames are not available to graded code")
        if event in FORBIDDEN or (event == "open" and args and str(args[0]).startswith("/proc")):
            raise PermissionError(f"graded code may not use {event} ({args[0] if args else ''})")

    sys.addaudithook(guard)


def main() -> None:
    import builtins

    # graded code may rebind names in os and builtins; the harness keeps the real ones
    exit_now, write, run, build = os._exit, os.write, exec, compile
    pristine = dict(vars(builtins))
    nonce = os.read(3, 256).decode()
    os.close(3)
    sources = {}
    for name in ("program.py", "checks.py"):
        with open(name, encoding="utf-8") as f:
            sources[name] = f.read()
    _arm()
    namespace = {"__name__": "__main__", "__builtins__": dict(pristine)}
    try:
        run(build(sources["program.py"], "program.py", "exec"), namespace)
        # the checks (and the program's functions they call) see the builtins as they were, not as
        # the program may have left them (a program that rebinds abs or isinstance cannot pass that way)
        namespace["__builtins__"] = dict(pristine)
        run(build(sources["checks.py"], "checks.py", "exec"), namespace)
        sys.stdout.flush()
    except BaseException as e:  # noqa: BLE001  (SystemExit too: a program that exits did not pass)
        message = f"{type(e).__name__}: {e}"
        write(2, f"\naeth-sandbox: the checks did not complete: {message[:2000]}\n".encode("utf-8", "replace"))
        exit_now(1)
    write(1, f"\n{MARKER}{nonce}\n".encode())
    exit_now(0)


if __name__ == "__main__":
    main()
