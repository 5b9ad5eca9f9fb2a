"""Inside the sandbox's fresh namespaces, before the untrusted program starts (see sandbox.py).

Runs as ``python -I -S`` (standard library only) as root of new mount, PID, network, IPC and UTS
namespaces. It reads its instructions as JSON on stdin, fences the filesystem (home directories
hidden, everything read-only, a private size-capped /tmp), sets resource limits, and finally
execs ``setpriv``, which drops every capability (and, when aeth runs as root, becomes ``nobody``)
and execs Python on the program. Any failure here stops the run: the program never starts outside
a complete fence.
"""

import ctypes
import json
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME}
MNT_DETACH = 2
#: (pivot_root, keyctl) system call numbers; Python's os module offers neither
SYSCALLS = {"x86_64": (155, 250), "aarch64": (41, 219)}
KEYCTL_JOIN_SESSION_KEYRING = 1
NOBODY = 65534
WORK = "/tmp/work"
NEW_ROOT = "/tmp/.aeth-root"
#: what the program's world is made of: these, read-only, and nothing else of the host
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime")
ETC_DIRS = ("ld.so.conf.d",)
DEVICES = ("null", "zero", "full", "random", "urandom")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
#: the only mounts that stay writable (private tmpfs) or are the namespace's own (proc)
WRITABLE = (b"/tmp", b"/dev/shm")

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def enc(text):
    return text.encode() if isinstance(text, str) else text


def mount(source, target, fstype, flags, data=None):
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or source or ''} on {target}: {os.strerror(err)}")


def syscall_numbers():
    machine = os.uname().machine
    if machine not in SYSCALLS:
        raise OSError(f"the sandbox does not know this machine's system calls ({machine})")
    return SYSCALLS[machine]


def bind_readonly(source, target):
    """Bind ``source`` (a file or directory) at ``target``, read-only, without what is mounted below it."""
    flags = os.statvfs(source).f_flag
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount(source, target, None, MS_BIND)
    keep = sum(bit for st, bit in ST_FLAGS.items() if flags & st)  # flags the kernel locks must be kept
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | keep)


def place(path, new_root):
    """``path`` of the host inside ``new_root``: a symlink stays a symlink (merged /usr), a directory
    or file is bound read-only; a path the host lacks is left out."""
    target = new_root + path
    if os.path.islink(path):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.readlink(path), target)
    elif os.path.exists(path):
        bind_readonly(path, target)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def fence(spec):
    """Give the program a world of its own: a fresh root holding read-only binds of what Python
    needs (the system's /usr and libraries, the interpreter's prefix, a few files of /etc, the
    harmless devices), the namespace's /proc, and private size-capped tmpfs at /tmp and /dev/shm.
    Nothing else of the host is there: no home directory, no AETH_HOME, no checkout, no socket,
    no mqueue. Every mount but the private ones is then checked read-only, or the run stops."""
    limits = spec["limits"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(NEW_ROOT, exist_ok=True)
    mount("tmpfs", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    new = NEW_ROOT
    for path in SYSTEM:
        place(path, new)
    placed = list(SYSTEM)
    for path in sorted({os.path.realpath(spec["prefix"]), os.path.dirname(os.path.realpath(spec["python"]))}):
        if not any(path == d or path.startswith(d + "/") for d in placed):  # the interpreter, if not in /usr
            place(path, new)
            placed.append(path)
    for name in ETC_FILES + ETC_DIRS:
        place(os.path.join("/etc", name), new)
    write(new + "/etc/passwd", PASSWD)
    write(new + "/etc/group", GROUP)
    os.makedirs(new + "/dev")
    mount("tmpfs", new + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        place("/dev/" + name, new)  # writing to a device node on a read-only mount still works
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    os.makedirs(new + "/dev/shm")
    mount(None, new + "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    mount("tmpfs", new + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=1777")
    os.makedirs(new + "/proc")
    mount("/proc", new + "/proc", None, MS_BIND | MS_REC)  # the PID namespace's own proc (unshare --mount-proc)
    os.makedirs(new + "/tmp")
    mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={limits['disk_mb']}m,mode=1777")
    os.makedirs(new + "/.old")
    pivot, _ = syscall_numbers()
    if libc.syscall(pivot, enc(new), enc(new + "/.old")) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err)}")
    os.chdir("/")
    if libc.umount2(b"/.old", MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"detaching the host's root: {os.strerror(err)}")
    os.rmdir("/.old")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    check_mounts()


def mounts():
    """(mount point, options, fs type) of every mount, from /proc/self/mountinfo, as bytes: a mount
    point may hold any byte (octal escapes such as \\040 are decoded; nothing is assumed to be text)."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, right = line.split(b" - ", 1)
            fields = left.split()
            out.append((unescape(fields[4]), fields[5].split(b","), right.split()[0]))
    return out


def unescape(raw):
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def check_mounts():
    """Stop the run unless every mount but the private tmpfs and the namespace's /proc is read-only."""
    for point, options, fstype in mounts():
        if point in WRITABLE or point == b"/proc" or point.startswith(b"/proc/"):
            continue
        if b"ro" not in options:
            raise OSError(f"{point!r} ({fstype.decode(errors='replace')}) is still writable")


def new_session_keyring():
    """Leave the caller's session keyring behind: join a new, empty, anonymous one."""
    _, keyctl = syscall_numbers()
    if libc.syscall(keyctl, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"a new session keyring: {os.strerror(err)}")


#: system calls refused with EPERM: the kernel's keyrings, new namespaces, io_uring, userfaultfd,
#: and reaching into other processes; CLONE_NEW* flags on clone are refused likewise
DENIED = ("keyctl", "add_key", "request_key", "unshare", "setns", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "userfaultfd", "ptrace", "process_vm_readv", "process_vm_writev", "bpf",
          "perf_event_open")
CLONE_NEW = (0x00020000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x02000000)  # NS UTS IPC USER PID NET CGROUP
AF_UNIX = 1


def load_seccomp(spec):
    """pyseccomp, and through it the system's libseccomp, loaded while the host's files are in view.

    pyseccomp finds its libraries with ``ctypes.util.find_library``: importing that module (it
    pulls in subprocess and shutil) and running ``ldconfig -p`` cost ~40 ms a run. The caller
    found the libraries once and passes their names; a stand-in ``ctypes.util`` answers with them.
    """
    import types

    sys.path.append(spec["seccomp"]["dir"])  # after the standard library, which it must never shadow
    found = spec["seccomp"]["libraries"]
    stand_in = types.ModuleType("ctypes.util")
    stand_in.find_library = found.get
    sys.modules["ctypes.util"], ctypes.util = stand_in, stand_in
    try:
        import pyseccomp
    finally:
        del sys.modules["ctypes.util"], ctypes.util
    return pyseccomp


def filter_syscalls(seccomp, spec):
    """Install the seccomp filter every process of the run inherits (libseccomp, through pyseccomp).

    clone3 answers ENOSYS, so the C library falls back to clone, whose flags a filter can read.
    UNIX sockets are refused unless the run's limits allow them (a socket file on a read-only
    mount can still be connected to; with the allowlisted root none is there, but this holds even
    where one is).
    """
    import errno

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for flag in CLONE_NEW:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    if not spec["limits"].get("unix_sockets"):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "socket", seccomp.Arg(0, seccomp.EQ, AF_UNIX))
    rules.load()


def set_limits(spec):
    lim = spec["limits"]
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_seconds"], lim["cpu_seconds"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim["memory_mb"] * mb, lim["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_mb"] * mb, lim["file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim["open_files"], lim["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = spec["nproc_base"] + lim["processes"]
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def main():
    spec = json.loads(sys.stdin.read())
    try:
        for procs in spec.get("cgroup_procs", []):  # first: every process of the run is in the run's cgroup
            with open(procs, "w") as f:
                f.write("0")
        seccomp = load_seccomp(spec)
        new_session_keyring()
        fence(spec)
        os.makedirs(WORK, mode=0o700)
        files = {"main.py": spec["code"], "stdin.txt": spec["stdin"], **spec.get("files", {})}
        for name, text in files.items():
            with open(os.path.join(WORK, name), "w", encoding="utf-8") as f:
                f.write(text)
        if spec["as_root"]:
            for path in (WORK, *(os.path.join(WORK, n) for n in files)):
                os.chown(path, NOBODY, NOBODY)
        if spec.get("secret"):  # for the program's harness alone: it reads fd 3 before any other code runs
            read, write = os.pipe()
            os.write(write, spec["secret"].encode())
            os.close(write)
            if read != 3:
                os.dup2(read, 3)  # inheritable, unlike the pipe's own descriptor
                os.close(read)
            else:
                os.set_inheritable(3, True)
        stdin = os.open(os.path.join(WORK, "stdin.txt"), os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        os.chdir(WORK)
        set_limits(spec)
        filter_syscalls(seccomp, spec)  # last: from here on, this process too is filtered
    except Exception as e:  # noqa: BLE001  (any failure: the program must not run)
        print(f"aeth-sandbox: setup failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(125)
    who = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if spec["as_root"] else []
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORK, "TMPDIR": WORK, "LANG": "C.UTF-8"}
    os.execve(spec["setpriv"], ["setpriv", *who, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                                "--", spec["python"], "-I", "-S", "main.py"], env)


if __name__ == "__main__":
    main()
