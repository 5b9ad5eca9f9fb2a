"""Plugins use aeth's public surface only: the modules below, and in each the names of its ``__all__``.

A plugin that reaches into ``aeth.models.loading`` or ``aeth.generation.sampling`` breaks whenever
core reorganises its insides; one that imports from the public modules keeps working. This test
reads (never imports) every module of every plugin in ``plugins/`` and names each private import
by file and line. ``aeth.config``, ``aeth.app``, ``aeth.request`` and the rest stay internal: a plugin gets
the application, its config and its model pool through its hooks' arguments
(``app``, ``context.app``), and the plain data types from ``aeth`` itself.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: the modules a plugin may import from; a name is public when it is in that module's __all__
PUBLIC_MODULES = (
    "aeth",
    "aeth.datasets",
    "aeth.errors",
    "aeth.evals",
    "aeth.generation",
    "aeth.images",
    "aeth.models",
    "aeth.testing",
)


def plugin_sources() -> list[Path]:
    """Every Python file of every plugin's package (``plugins/*/src``), the template included."""
    return sorted(p for p in (ROOT / "plugins").glob("*/src/**/*.py"))


def private_imports(path: Path, public: dict[str, set[str]]) -> list[str]:
    """``file:line: what`` for each import in ``path`` of an aeth module or name that is not public."""
    where = path.relative_to(ROOT)
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (alias.name == "aeth" or alias.name.startswith("aeth.")) and alias.name not in public:
                    problems.append(f"{where}:{node.lineno}: import {alias.name} (not a public module)")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module != "aeth" and not module.startswith("aeth."):
                continue
            if module not in public:
                problems.append(f"{where}:{node.lineno}: from {module} import ... (not a public module)")
                continue
            for alias in node.names:
                if alias.name == "*" or alias.name.startswith("_") or alias.name not in public[module]:
                    problems.append(f"{where}:{node.lineno}: from {module} import {alias.name} "
                                    f"(not in {module}.__all__)")
    return problems


@pytest.fixture(scope="module")
def public() -> dict[str, set[str]]:
    return {name: set(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}


def test_every_plugin_imports_only_public_names(public):
    sources = plugin_sources()
    assert len({p.relative_to(ROOT).parts[1] for p in sources}) >= 7  # six specialists and the template
    problems = [problem for path in sources for problem in private_imports(path, public)]
    assert not problems, "plugins import aeth's insides:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_exists_and_is_documented(name):
    module = importlib.import_module(name)
    assert module.__all__ and len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    assert not [n for n in module.__all__ if n.startswith("_")]
    undocumented = [n for n in module.__all__
                    if callable(getattr(module, n)) and not (getattr(module, n).__doc__ or "").strip()]
    assert not undocumented, f"{name}: public names without a docstring: {undocumented}"


def test_the_check_names_a_private_import_by_file_and_line(tmp_path, public, monkeypatch):
    package = tmp_path / "plugins" / "aetherial-x" / "src" / "aetherial_x"
    package.mkdir(parents=True)
    (package / "plugin.py").write_text(
        "from aeth import hookimpl\n"
        "from aeth.models.loading import resolve_dtype\n"
        "import aeth.config\n"
        "\n"
        "def f():\n"
        "    from aeth.generation import next_token, stream_text\n"
        "    from aeth.evals import _progress\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    problems = private_imports(package / "plugin.py", public)
    where = "plugins/aetherial-x/src/aetherial_x/plugin.py"
    assert problems == [
        f"{where}:2: from aeth.models.loading import ... (not a public module)",
        f"{where}:3: import aeth.config (not a public module)",
        f"{where}:6: from aeth.generation import next_token (not in aeth.generation.__all__)",
        f"{where}:7: from aeth.evals import _progress (not in aeth.evals.__all__)",
    ]


def test_public_modules_do_not_import_torch():
    import subprocess
    import sys

    code = (f"import sys\nfor m in {PUBLIC_MODULES!r}: __import__(m)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
