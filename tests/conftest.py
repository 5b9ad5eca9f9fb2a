"""Suite-wide checks: every hook in aeth.hookspecs must be called by some test.

Hook calls are counted with pluggy's own ``add_hookcall_monitoring`` on every plugin host the
tests create; the product keeps no bookkeeping of its own for this.
"""

from __future__ import annotations

from collections import Counter

import pytest

HOOK_CALLS: Counter[str] = Counter()


def pytest_configure(config: pytest.Config) -> None:
    from aeth.plugins import PluginHost

    init = PluginHost.__init__

    def monitored_init(self: PluginHost) -> None:
        init(self)
        self.pm.add_hookcall_monitoring(lambda name, impls, kwargs: HOOK_CALLS.update([name]), lambda *a: None)

    PluginHost.__init__ = monitored_init


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only a run of the whole suite can tell whether a hook is exercised; a selection cannot.
    opts = session.config.option
    whole_suite = session.config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if exitstatus != 0 or not whole_suite or opts.keyword or opts.markexpr or getattr(opts, "lf", False):
        return
    from aeth import hookspecs

    never = sorted(n for n in dir(hookspecs) if n in hookspecs.__dict__ and hasattr(getattr(hookspecs, n), "aeth_spec")
                   and HOOK_CALLS[n] == 0)
    if never:
        session.config.get_terminal_writer().line(f"hooks never exercised by any test: {', '.join(never)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
