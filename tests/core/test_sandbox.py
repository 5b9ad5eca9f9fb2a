"""The code sandbox against hostile programs: each attack must be contained and the host unharmed."""

import ast
import os
import socket
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from aeth.evals.sandbox import NOBODY, Limits, SandboxResult, run_python, run_tests

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")
QUICK = Limits(wall_seconds=5, cpu_seconds=3)


def run(code: str, limits: Limits = QUICK, **kw) -> SandboxResult:
    return run_python(textwrap.dedent(code), limits, **kw)


def live_tasks(uid: int) -> int:
    """Tasks of ``uid`` that are not zombies (a reaped-later zombie holds nothing)."""
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            n += int(fields["Threads"])
    return n


@pytest.fixture
def victim():
    """A directory with a file in it, outside /tmp, in the repository's ignored build/ folder."""
    root = Path(__file__).resolve().parents[2] / "build" / f"sandbox-victim-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    (root / "precious.txt").write_text("keep me")
    yield root
    (root / "precious.txt").unlink(missing_ok=True)
    root.rmdir()


def test_ordinary_program_runs_with_stdin_and_a_private_workdir():
    result = run("""
        import os, sys
        print(sys.stdin.read().upper(), os.getcwd(), sorted(os.listdir('.')))
        open('scratch.txt', 'w').write('x' * 1000)   # its own directory is writable
        print(open('scratch.txt').read(3))
    """, stdin="hello")
    assert result.ok, result.stderr
    assert result.stdout.split("\n")[0] == "HELLO /tmp/work ['main.py', 'stdin.txt']"
    assert result.stdout.split("\n")[1] == "xxx"


def test_no_secrets_in_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-leak")
    result = run("import os; print(sorted(os.environ)); print(os.environ.get('OPENAI_API_KEY'))")
    assert result.ok and "sk-should-never-leak" not in result.stdout
    assert result.stdout.startswith("['HOME', 'LANG', 'PATH', 'TMPDIR']")


def test_os_system_and_rm_rf_outside_its_directory_harm_nothing(victim):
    result = run(f"""
        import os, shutil
        print(os.system('rm -rf {victim} 2>/dev/null'))
        try:
            shutil.rmtree({str(victim)!r})
        except OSError as e:
            print('refused:', e.strerror)
        try:
            open({str(victim / 'new.txt')!r}, 'w')
        except OSError as e:
            print('refused:', e.strerror)
    """)
    # read-only where it is visible; hidden altogether when the checkout lies under /tmp or a home
    assert result.stdout.count("refused: Read-only file system") + result.stdout.count("refused: No such file") == 2
    assert (victim / "precious.txt").read_text() == "keep me"
    assert not (victim / "new.txt").exists()


def test_home_directories_and_ssh_keys_are_invisible():
    home = Path.home()
    probe = home / f".aeth-sandbox-probe-{uuid.uuid4().hex[:8]}"
    (probe / ".ssh").mkdir(parents=True)
    key = probe / ".ssh" / "id_ed25519"
    key.write_text("PRIVATE KEY")
    try:
        result = run(f"""
            import os
            for path in ({str(key)!r}, {str(home / '.ssh')!r}):
                try:
                    print(open(path).read() if os.path.isfile(path) else os.listdir(path))
                except OSError as e:
                    print('hidden:', e.strerror)
            print(sorted(os.listdir({str(home)!r})))
        """)
    finally:
        key.unlink()
        (probe / ".ssh").rmdir()
        probe.rmdir()
    assert result.ok, result.stderr
    assert "PRIVATE KEY" not in result.stdout
    assert result.stdout.count("hidden: No such file or directory") == 2
    assert probe.name not in result.stdout


def test_no_network_even_to_a_server_on_this_machine():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    result = run(f"""
        import socket
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=2)
            print('connected')
        except OSError as e:
            print('no network:', e.strerror)
    """)
    thread.join()
    server.close()
    assert result.ok, result.stderr
    assert result.stdout.startswith("no network:")
    assert accepted == []


def test_fork_bomb_is_capped_and_leaves_no_process_behind():
    result = run("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """, Limits(wall_seconds=3, cpu_seconds=3, processes=16))
    assert result.status in {"timeout", "killed"}
    if os.geteuid() == 0:  # the program ran as nobody: nothing of it may still run
        assert live_tasks(NOBODY) == 0


def test_infinite_output_is_cut_off():
    result = run("while True: print('x' * 1000)", Limits(wall_seconds=10, output_bytes=64_000))
    assert result.status == "output_limit"
    assert len(result.stdout) <= 64_000
    assert result.seconds < 5  # stopped when the cap was hit, not at the wall clock


def test_infinite_memory_is_refused():
    result = run("""
        blocks = []
        while True:
            blocks.append(bytearray(50 * 1024 * 1024))
    """, Limits(wall_seconds=10, memory_mb=256))
    assert result.status in {"error", "killed"}
    assert "MemoryError" in result.stderr or result.status == "killed"


def test_cpu_and_wall_clock_limits():
    spin = run("while True: pass", Limits(wall_seconds=10, cpu_seconds=1))
    assert spin.status == "killed" and spin.seconds < 5
    sleep = run("import time; time.sleep(60)", Limits(wall_seconds=1, cpu_seconds=5))
    assert sleep.status == "timeout" and sleep.seconds < 5


def test_a_detached_child_cannot_outlive_the_run():
    result = run("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(120)
        print('parent exits')
    """)
    assert result.ok and "parent exits" in result.stdout
    if os.geteuid() == 0:
        assert live_tasks(NOBODY) == 0


def test_it_cannot_regain_privileges_or_undo_the_fence():
    result = run("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print(os.getuid() if os.getuid() else 'uid 0')
        print('remount', libc.mount(None, b'/', None, 32 | 4096, None), ctypes.get_errno())
        try:
            os.setuid(0)
            print('setuid worked')
        except OSError as e:
            print('setuid refused:', e.strerror)
        print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])
    """)
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("remount -1")
    assert "setuid worked" not in result.stdout
    assert lines[-1] == "0000000000000000"  # no effective capability at all


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def world_readable_dir():
    import shutil
    import tempfile

    # readable by nobody (pytest's tmp dirs are root's): the checkout's build/ when every directory
    # above it lets others in (outside /tmp, where the sandbox has its own), else under /tmp itself
    build = Path(__file__).resolve().parents[2] / "build"
    reachable = all(p.stat().st_mode & 0o001 for p in build.parent.parents) and build.parent.stat().st_mode & 0o001
    if reachable:
        build.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="sandbox-user-", dir=build if reachable else "/tmp"))
    yield path
    shutil.rmtree(path)


def sandbox_package(root: Path) -> None:
    """The sandbox's files alone under ``root``, importable by the system interpreter as an ordinary
    user would run it: aeth.evals.sandbox and what it needs (its boot, harness and cgroup modules,
    pyseccomp), without the rest of aeth or the venv."""
    import shutil

    import pyseccomp

    import aeth.evals.sandbox as sandbox

    pkg = root / "aeth"
    (pkg / "evals").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "evals" / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("class AethError(Exception):\n    pass\n")  # all the module needs of aeth
    for name in ("sandbox.py", "_sandbox_boot.py", "_sandbox_harness.py", "cgroups.py"):
        shutil.copy(Path(sandbox.__file__).with_name(name), pkg / "evals" / name)
    shutil.copy(pyseccomp.__file__, root / "pyseccomp.py")


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists(), reason="needs root to become an ordinary user, and a system python")
def test_an_ordinary_user_gets_the_same_fence(world_readable_dir):
    # aeth run by an unprivileged user builds its namespaces through a user namespace; check that
    # path for real by running the sandbox module as `nobody` with the system interpreter
    import subprocess

    tmp_path = world_readable_dir
    sandbox_package(tmp_path)
    driver = tmp_path / "driver.py"
    (tmp_path / "inner.py").write_text(textwrap.dedent(f"""
        import os, socket
        print(os.getuid(), sorted(os.environ))
        for attempt in (lambda: open({str(tmp_path / 'created.txt')!r}, 'w'),
                        lambda: socket.create_connection(('127.0.0.1', 9), timeout=1)):
            try:
                attempt()
                print('ALLOWED')
            except OSError as e:
                print('refused', e.errno)
        print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])
    """))
    driver.write_text(textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from aeth.evals.sandbox import Limits, run_python
        r = run_python(open({str(tmp_path / "inner.py")!r}).read(), Limits(wall_seconds=10))
        bomb = run_python("import os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass", Limits(wall_seconds=2))
        print(json.dumps([r.status, r.stdout, r.stderr, bomb.status]))
    """))
    os.chmod(tmp_path, 0o777)  # nobody may write here outside the sandbox: inside, the fence must refuse
    for p in tmp_path.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", str(SYSTEM_PYTHON), str(driver)],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    status, stdout, stderr, bomb = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert status == "ok", stderr
    lines = stdout.splitlines()
    assert lines[0] == "0 ['HOME', 'LANG', 'PATH', 'TMPDIR']"  # root of its own user namespace only
    assert lines[1] in {"refused 30", "refused 2"}  # read-only filesystem (or hidden, under /tmp or a home)
    assert lines[2] == "refused 101"  # network unreachable
    assert lines[3] == "0000000000000000"
    assert bomb in {"timeout", "killed"}
    assert not (tmp_path / "created.txt").exists()


def test_a_program_that_leaves_the_process_group_and_runs_out_the_clock_is_gone_when_the_run_returns():
    """The program is the PID namespace's first process: it leaves unshare's process group with
    setsid, and running as nobody it lost the parent-death signal. It must still be dead (and all
    its children with it) the moment run_python returns."""
    result = run("""
        import os, time
        os.setsid()
        if os.fork() == 0:
            os.setsid()
        time.sleep(60)
    """, Limits(wall_seconds=2, cpu_seconds=2))
    assert result.status == "timeout"
    if os.geteuid() == 0:
        assert live_tasks(NOBODY) == 0


# ---- grading: only checks that ran to their end count ------------------------------------------


CHECKS = "assert double(2) == 4\nassert double(-3) == -6\n"


@pytest.mark.parametrize(("program", "passed"), [
    ("def double(x):\n    return 2 * x\n", True),
    ("def double(x):\n    return x\n", False),
    ("def double(x):\n    raise SystemExit(0)\n", False),
    ("import os\ndef double(x):\n    os._exit(0)\n", False),
    ("raise SystemExit(0)\n", False),
    ("import os\nos._exit(0)\n", False),
])
def test_a_clean_exit_is_not_a_pass(program, passed):
    result = run_tests(program, CHECKS, QUICK)
    assert result.ok is passed, (result.status, result.stdout, result.stderr)
    assert "aeth-sandbox-checked" not in result.stdout  # the nonce line is the harness's, never shown


HUNTS = {
    "the harness's frame": "import sys\nf = sys._getframe(1)\nprint(f.f_locals)\n",
    "a traceback's frame": "try:\n    1/0\nexcept Exception as e:\n    print(e.__traceback__.tb_frame.f_back.f_locals)\n",
    "the gc's objects": "import gc\nprint([o for o in gc.get_objects() if isinstance(o, dict)][:1])\n",
    "the nonce's descriptor": "import os\nprint(os.read(3, 256))\n",
    "its own memory": "print(open('/proc/self/mem', 'rb'))\n",
    "ctypes": "import ctypes\nprint(ctypes.string_at(id(object()), 8))\n",
    "a new program": "import os\nos.system('true')\n",
    "a child process": "import os\nos.fork()\n",
    "tracing": "import sys\nsys.settrace(lambda *a: None)\n",
}


@pytest.mark.parametrize("hunt", HUNTS.values(), ids=HUNTS.keys())
def test_graded_code_cannot_reach_for_the_nonce(hunt):
    result = run_tests(hunt + "def double(x):\n    return 2 * x\n", CHECKS, QUICK)
    assert not result.ok, (result.stdout, result.stderr)


def test_rebinding_builtins_does_not_fool_the_checks():
    program = "import builtins\nbuiltins.abs = lambda x: 0\n__builtins__['abs'] = lambda x: 0\ndef near(x):\n    return x\n"
    assert not run_tests(program, "assert abs(near(5) - 4) < 0.5\n", QUICK).ok
    assert run_tests(program, "assert abs(near(4) - 4) < 0.5\n", QUICK).ok


# ---- only an allowlisted filesystem is there --------------------------------------------------


@pytest.fixture
def planted():
    """Secrets where the old fence did not look: a directory outside /tmp and /home (where an explicit
    AETH_HOME may live), a home that is a symlink to it, this checkout, and a UNIX socket listening
    in the checkout's build/ folder."""
    import shutil

    tag = uuid.uuid4().hex[:8]
    elsewhere = Path(f"/var/lib/aeth-sandbox-{tag}")
    elsewhere.mkdir(parents=True)
    (elsewhere / "secret.txt").write_text("elsewhere")
    home = Path(f"/home/alice-{tag}")
    home.symlink_to(elsewhere)
    build = Path(__file__).resolve().parents[2] / "build"
    build.mkdir(exist_ok=True)
    sock_path = build / f"s-{tag}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(0.5)
    for p in (elsewhere, elsewhere / "secret.txt"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    yield {"elsewhere": elsewhere / "secret.txt", "home": home / "secret.txt", "checkout": Path(__file__).resolve(),
           "socket": sock_path, "server": server}
    server.close()
    sock_path.unlink(missing_ok=True)
    home.unlink()
    shutil.rmtree(elsewhere)


def test_nothing_of_the_host_is_there_but_what_python_needs(planted):
    result = run(f"""
        import os, socket
        for path in {[str(planted[k]) for k in ("elsewhere", "home", "checkout")]!r}:
            try:
                print(open(path).read()[:20])
            except OSError as e:
                print('refused', e.errno)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({str(planted['socket'])!r})
            print('connected')
        except OSError as e:
            print('refused', e.errno)
        print(sorted(os.listdir('/')))
        print(sorted(os.listdir('/etc')))
    """, Limits(wall_seconds=5, unix_sockets=True))  # UNIX sockets allowed: the socket file must still be out of reach
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["refused 2"] * 3, result.stdout  # not there at all, wherever it lived
    assert lines[3].startswith("refused") and "connected" not in result.stdout
    with pytest.raises(socket.timeout):
        planted["server"].accept()  # and nothing knocked
    top, etc = (set(ast.literal_eval(line)) for line in lines[4:6])
    assert {"usr", "tmp", "proc", "dev", "etc"} <= top <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32",
                                                           "proc", "root", "sbin", "tmp", "usr"}
    assert etc <= {"group", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd"}


def test_every_mount_it_sees_is_read_only_but_its_own_tmpfs():
    result = run(r"""
        for line in open('/proc/self/mountinfo', 'rb'):
            fields = line.split(b' - ')[0].split()
            print(fields[4].decode('unicode_escape'), fields[5].split(b',')[0].decode())
    """)
    assert result.ok, result.stderr
    seen = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    writable = {point for point, mode in seen.items() if mode == "rw"}
    assert writable <= {"/tmp", "/dev/shm", "/proc"} | {p for p in writable if p.startswith("/proc/")}, seen
    assert "/tmp" in writable and "/" in seen and seen["/"] == "ro"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting on the host needs root")
def test_a_host_mount_with_a_non_ascii_name_or_an_mqueue_is_not_reachable(tmp_path):
    import subprocess

    build = Path(__file__).resolve().parents[2] / "build"
    odd = build / f"mnt-ünïcode ✓-{uuid.uuid4().hex[:6]}"
    queues = build / f"mqueue-{uuid.uuid4().hex[:6]}"
    odd.mkdir(parents=True)
    queues.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", str(odd)], check=True)
    subprocess.run(["mount", "-t", "mqueue", "none", str(queues)], check=True)
    (queues / "aeth-queue").unlink(missing_ok=True)  # queues outlive their mount: one a failed run left
    try:
        result = run(f"""
            for path in {[str(odd / 'written.txt'), str(queues / 'aeth-queue')]!r}:
                try:
                    open(path, 'w').write('x')
                    print('WROTE', path)
                except OSError as e:
                    print('refused', e.errno)
        """)
        assert result.ok, result.stderr
        assert "WROTE" not in result.stdout
        assert not (odd / "written.txt").exists() and not (queues / "aeth-queue").exists()
    finally:
        (queues / "aeth-queue").unlink(missing_ok=True)
        subprocess.run(["umount", str(odd)], check=False)
        subprocess.run(["umount", str(queues)], check=False)
        odd.rmdir()
        queues.rmdir()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the key syscalls are numbered for x86_64 here")
def test_the_callers_session_keyring_is_not_inherited():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(250, 1, None) > 0  # this test's process: a fresh session keyring of its own
    key = libc.syscall(248, b"user", b"aeth-sandbox-test", b"the secret", 10, -3)  # add_key(..., @s)
    assert key > 0
    result = run(f"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(64)
        n = libc.syscall(250, 11, {key}, buf, 64)  # keyctl(KEYCTL_READ, key)
        print(n, ctypes.get_errno(), buf.value)
        print(libc.syscall(250, 0, -3, 0))  # keyctl(KEYCTL_GET_KEYRING_ID, @s, create=0)
    """)
    assert result.ok, result.stderr
    first = result.stdout.splitlines()[0].split()
    assert int(first[0]) < 0 and b"the secret" not in result.stdout.encode()


# ---- a system-call filter ---------------------------------------------------------------------


X86_64 = {"keyctl": (250, 0, -3, 0), "add_key": (248, b"user", b"k", b"v", 1, -3), "unshare user": (272, 0x10000000),
          "unshare mount": (272, 0x00020000), "setns": (308, 0, 0), "io_uring_setup": (425, 1, 0),
          "userfaultfd": (323, 0), "ptrace": (101, 0, 1, 0, 0), "bpf": (321, 0, 0, 0)}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the system calls are numbered for x86_64 here")
@pytest.mark.parametrize("call", X86_64.values(), ids=X86_64.keys())
def test_refused_system_calls(call):
    result = run(f"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        args = {call!r}
        buf = ctypes.create_string_buffer(256)
        if args[0] == 425:
            args = (425, 1, ctypes.addressof(buf))  # io_uring_setup(1 entry, params)
        print(libc.syscall(*args), ctypes.get_errno())
    """)
    assert result.ok, result.stderr
    assert result.stdout.split() == ["-1", "1"], result.stdout  # -1, EPERM


def test_unix_sockets_only_when_a_run_asks():
    code = "import socket\ntry:\n    socket.socket(socket.AF_UNIX)\n    print('made')\nexcept OSError as e:\n    print(e.errno)\n"
    assert run(code).stdout.split() == ["1"]
    assert run(code, Limits(wall_seconds=5, unix_sockets=True)).stdout.split() == ["made"]
    assert run("import socket\na, b = socket.socketpair()\na.send(b'x')\nprint(b.recv(1))\n").stdout.strip() == "b'x'"


def test_new_namespaces_are_refused_even_through_clone():
    result = run("""
        import os, subprocess
        try:
            os.unshare(os.CLONE_NEWUSER) if hasattr(os, 'unshare') else None
        except OSError as e:
            print('unshare', e.errno)
        print(subprocess.run(['unshare', '--user', 'true'], capture_output=True).returncode != 0)
        print(subprocess.run(['true']).returncode)  # an ordinary child still starts (clone3 -> clone)
    """)
    assert result.ok, result.stderr
    assert result.stdout.splitlines()[-2:] == ["True", "0"]


# ---- limits for the whole run, not per process -----------------------------------------------


def _run_cgroup_or_skip():
    from aeth.evals import cgroups

    group = cgroups.create(1 << 30, 16)
    if group is None:
        pytest.skip("this host lets this user make no cgroup: the run falls back to per-process limits (docs/sandbox.md)")
    group.kill_and_remove()


CHILDREN_HOLD = """
    import os, time
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            block = b'x' * ({mb} * 1024 * 1024)  # written, so really held (a zeroed allocation is not)
            time.sleep(2)
            os._exit(0)
        children.append(pid)
    print(sum(os.waitpid(pid, 0)[1] == 0 for pid in children))  # held theirs to the end
"""


def test_memory_is_bounded_for_the_whole_run_not_per_process():
    """Each child alone fits the limit; eight at once must not (before: 8 x 150 MB under 256 MB)."""
    _run_cgroup_or_skip()
    result = run(CHILDREN_HOLD.format(mb=150), Limits(wall_seconds=20, cpu_seconds=10, memory_mb=256))
    assert result.enforcement.startswith("cgroup"), result
    held = int(result.stdout.split()[0]) if result.stdout.split() else 0
    assert held * 150 <= 256, (held, result.stderr[-300:])
    assert result.peak_memory_mb is not None and result.peak_memory_mb <= 256


def test_shared_memory_counts_against_the_run():
    """System V segments outlive their mapping: before, 6 x 128 MB were held under a 256 MB limit."""
    _run_cgroup_or_skip()
    result = run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        size, held = 128 * 1024 * 1024, 0
        for _ in range(6):
            seg = libc.shmget(0, size, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
            if seg < 0:
                break
            addr = libc.shmat(seg, None, 0)
            ctypes.memset(addr, 1, size)  # touched: really held
            libc.shmdt(ctypes.c_void_p(addr))  # detached, so out of the address space, yet still held
            held += 1
            print(held, flush=True)
    """, Limits(wall_seconds=20, cpu_seconds=10, memory_mb=256))
    held = int(result.stdout.split()[-1]) if result.stdout.split() else 0
    assert held * 128 <= 256, (held, result.status)


FORKS = """import os, time
n = 0
for _ in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    n += 1
print(n)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists(), reason="needs root to become an ordinary user, and a system python")
def test_an_ordinary_users_other_processes_do_not_raise_its_process_cap(world_readable_dir):
    """In unprivileged mode the cap used to be 'the user's processes now + 16', counted in a user
    namespace where none of those exist: with 40 of them running, 56 forks got through."""
    import subprocess

    tmp_path = world_readable_dir
    sandbox_package(tmp_path)
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from aeth.evals.sandbox import Limits, run_python
        r = run_python({FORKS!r}, Limits(wall_seconds=10, processes=16))
        print(r.stdout.strip() or r.stderr)
    """))
    os.chmod(tmp_path, 0o755)
    for p in tmp_path.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    others = [subprocess.Popen([*as_nobody, "sleep", "60"]) for _ in range(40)]
    try:
        out = subprocess.run([*as_nobody, str(SYSTEM_PYTHON), str(driver)], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    finally:
        for p in others:
            p.kill()
            p.wait()
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) < 16, out.stdout


UNPRIVILEGED_ATTACKS = {
    # name: (program, expected stdout of the run, or None to expect a failed graded run)
    "outlives its run": ("import os, time\nos.setsid()\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(60)\n", "timeout"),
    "exits before its checks": ("raise SystemExit(0)\n", None),
    "session keyring": ("import ctypes\nl = ctypes.CDLL(None, use_errno=True)\nprint(l.syscall(250, 0, -3, 0), ctypes.get_errno())\n",
                        "-1 1"),
    "io_uring": ("import ctypes\nl = ctypes.CDLL(None, use_errno=True)\nb = ctypes.create_string_buffer(256)\n"
                 "print(l.syscall(425, 1, ctypes.addressof(b)), ctypes.get_errno())\n", "-1 1"),
    "userfaultfd": ("import ctypes\nl = ctypes.CDLL(None, use_errno=True)\nprint(l.syscall(323, 0), ctypes.get_errno())\n",
                    "-1 1"),
    "the checkout": (f"import os\nprint(os.path.exists({str(Path(__file__).resolve())!r}), os.path.exists('/home'))\n",
                     "False False"),
}


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or os.uname().machine != "x86_64",
                    reason="needs root to become an ordinary user, a system python, and x86_64 syscall numbers")
def test_the_review_findings_hold_for_an_ordinary_user_too(world_readable_dir):
    import json
    import subprocess

    tmp_path = world_readable_dir
    sandbox_package(tmp_path)
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from aeth.evals.sandbox import Limits, run_python, run_tests
        out = {{}}
        for name, (code, expect) in {UNPRIVILEGED_ATTACKS!r}.items():
            if expect is None:
                out[name] = run_tests(code, "pass", Limits(wall_seconds=5)).ok
            else:
                r = run_python(code, Limits(wall_seconds=2, cpu_seconds=2))
                out[name] = r.status if expect == "timeout" else r.stdout.strip()
        print(json.dumps(out))
    """))
    os.chmod(tmp_path, 0o755)
    for p in tmp_path.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", str(SYSTEM_PYTHON),
                          str(driver)], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {name: expect if expect is not None else False for name, (_, expect) in UNPRIVILEGED_ATTACKS.items()}
    assert live_tasks(NOBODY) == 0  # nothing of any run is left, though the driver ran as nobody too
