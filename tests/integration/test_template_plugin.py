"""The plugin template, as a third party uses it: `pip install -e` it, see it, test it, uninstall it.

Installing into the test environment itself would leave it changed if the test were killed, so
the template goes into a throwaway virtual environment layered over this one (a ``.pth`` line
adds this environment's site-packages, editable installs included). pip, the build and the
entry-point discovery are the real ones; nothing is downloaded (``--no-deps``, no build isolation).
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("template-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    # `import` lines in a .pth run at start-up; addsitedir also processes the parent's own .pth files
    Path(purelib, "_aeth_parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def pip(python, *args):
    out = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", *args],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def aeth(python, home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_")}
    env["AETH_HOME"] = str(home)
    return subprocess.run([str(python), "-m", "aeth", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=300)


def test_install_test_and_uninstall_the_template(venv, tmp_path):
    def plugins():
        out = aeth(venv, tmp_path, "plugins")
        assert out.returncode == 0, out.stderr
        assert "warning" not in out.stderr, out.stderr
        return {p["name"]: p for p in json.loads(out.stdout)}

    assert "aetherial-example" not in plugins()
    pip(venv, "install", "--no-deps", "--no-build-isolation", "-e", str(TEMPLATE))
    try:
        example = plugins()["aetherial-example"]  # a plugin is named after its distribution
        assert example["version"] == "0.1.0"
        assert example["registered"]["specialists"] == ["cooking"]
        assert example["hooks"] == ["register_specialists"]
        listed = aeth(venv, tmp_path, "specialists", "--json")
        assert "cooking" in {s["name"] for s in json.loads(listed.stdout)}

        # the template's own tests, contract included, pass as shipped
        tests = subprocess.run([str(venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE / "tests")],
                               capture_output=True, text=True, cwd=ROOT, timeout=600,
                               env={k: v for k, v in os.environ.items() if not k.startswith("AETH_")})
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
        assert " passed" in tests.stdout and "failed" not in tests.stdout
    finally:
        pip(venv, "uninstall", "-y", "aetherial-example")
    assert "aetherial-example" not in plugins()
    assert "cooking" not in {s["name"] for s in json.loads(aeth(venv, tmp_path, "specialists", "--json").stdout)}
