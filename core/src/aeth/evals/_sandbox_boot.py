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
import pwd
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME}
SPECIAL_FS = {"proc", "sysfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs", "debugfs",
              "tracefs", "pstore", "bpf", "hugetlbfs", "fusectl", "configfs", "binfmt_misc", "autofs", "efivarfs"}
NOBODY = 65534
WORK = "/tmp/work"

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def enc(text):
    return text.encode() if isinstance(text, str) else text


def mount(source, target, fstype, flags, data=None):
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or ''} on {target}: {os.strerror(err)}")


def mounts():
    """(mount point, fs type) of every mount, from /proc/self/mountinfo (octal escapes decoded)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            point = left.split()[4].encode().decode("unicode_escape")
            out.append((point, right.split()[0]))
    return out


def home_dirs():
    found = {"/root"}
    for entry in pwd.getpwall():
        if entry.pw_dir.startswith("/home/") or entry.pw_dir == "/root":
            found.add(entry.pw_dir)
    if os.path.isdir("/home"):
        found.update(os.path.join("/home", d) for d in os.listdir("/home"))
    return sorted(d for d in found if os.path.isdir(d) and os.path.realpath(d) == d)


def fence(spec):
    limits = spec["limits"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    prefix = os.path.realpath(spec["prefix"])
    keep = os.open(prefix, os.O_PATH)  # Python's own files, re-attached if they live in a home dir
    for home in home_dirs():  # every home directory disappears under an empty tmpfs
        mount("tmpfs", home, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        if prefix.startswith(home + "/"):
            os.makedirs(prefix, exist_ok=True)
            mount(f"/proc/self/fd/{keep}", prefix, None, MS_BIND | MS_REC)
    os.close(keep)
    private = {"/tmp": f"size={limits['disk_mb']}m,mode=1777", "/var/tmp": "size=64k,mode=1777",
               "/dev/shm": "size=64k,mode=1777"}
    for target, options in private.items():
        if os.path.isdir(target):
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)
    for point, fstype in mounts():  # then everything but the private tmpfs is made read-only
        if fstype in SPECIAL_FS or point in private or point.startswith(("/proc/", "/sys/", "/dev/")) or point == "/dev":
            continue
        try:
            flags = os.statvfs(point).f_flag
        except OSError:
            continue  # hidden under another mount: nothing can reach it
        keep_flags = sum(bit for st, bit in ST_FLAGS.items() if flags & st)  # locked flags must be kept
        mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep_flags)


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
    except Exception as e:  # noqa: BLE001  (any failure: the program must not run)
        print(f"aeth-sandbox: setup failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(125)
    who = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if spec["as_root"] else []
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORK, "TMPDIR": WORK, "LANG": "C.UTF-8"}
    os.execve(spec["setpriv"], ["setpriv", *who, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                                "--", spec["python"], "-I", "-S", "main.py"], env)


if __name__ == "__main__":
    main()
