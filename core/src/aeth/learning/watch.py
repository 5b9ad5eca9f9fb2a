"""``aeth learn --watch``: learn each specialist when :mod:`aeth.learning.schedule` says it is due.

::

    from aeth.app import Aeth
    from aeth.learning.watch import Watcher

    Watcher(Aeth(), interval=300).run()          # until Ctrl-C / SIGTERM
    Watcher(Aeth(), ["coding"]).run(once=True)   # one check: what cron or a systemd timer calls
    Watcher(Aeth(), practice={"prompts": 32}).run()  # also self-practice every learn.every_hours

Each round asks the schedule about every watched specialist and learns the due ones one after
another through :func:`aeth.learning.run.learn` (an unfinished run is resumed, never restarted);
one whose lock another process holds is skipped with a line saying so. The learn lock, not this
loop, is what keeps two learns of one specialist apart, so any number of watchers and manual
``aeth learn`` runs may share a machine. A learn that found nothing usable, or failed, is not
retried until its reason changes (more rows, another run), so a waiting comment does not start a
dataset build every round. Ctrl-C or SIGTERM between runs stops the loop; during a learn it
interrupts the training loop, which checkpoints (the next round, or ``aeth learn --resume``,
continues it).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from aeth.errors import AethError

__all__ = ["NICE", "Watcher", "lower_priority"]

#: the niceness the watcher runs at: a server beside it on the same cores gets them first
NICE = 10


def lower_priority(nice: int = NICE) -> int | None:
    """Raise this process's niceness to at least ``nice`` (never lower it); the niceness now, or
    None where the platform has none. Call it before torch starts its threads: Linux keeps a
    niceness per thread, and new threads inherit the caller's."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        return max(current, nice)
    except (AttributeError, OSError):  # Windows, or a sandbox that forbids it: run as is
        return None


class Watcher:
    """The loop of ``aeth learn --watch`` over ``names`` (default: every registered specialist).

    ``options`` go to each :func:`~aeth.learning.run.learn` (``max_steps``, ``objective``...);
    ``practice`` (a dict of :class:`~aeth.learning.practice.PracticeSettings` fields, ``{}`` for the
    defaults) also learns by self-practice a specialist that can when its time trigger fires with
    no feedback waiting; ``echo`` receives one line per decision; ``stop`` (set it from another
    thread, or by a signal) ends the loop between runs.
    """

    def __init__(self, app: Any, names: list[str] | None = None, *, interval: float = 60.0,
                 echo: Callable[[str], None] = print, options: dict[str, Any] | None = None,
                 practice: dict[str, Any] | None = None):
        self.app, self.interval, self.echo, self.options = app, interval, echo, dict(options or {})
        self.practice = practice
        self.names = [app.specialist(n).name for n in names] if names else None  # an unknown name fails now
        self.stop = threading.Event()
        self.learning = False  #: a learn is in progress (a SIGTERM then interrupts its training loop)
        self.failed = 0  #: learns that raised, over the watcher's life
        self._said: dict[str, str] = {}  # the last line printed per specialist for a decision to wait
        self._gave_up: dict[str, str] = {}  # specialist -> the reason its last learn found nothing / failed on

    def run(self, once: bool = False) -> int:
        """Check, learn what is due, sleep ``interval`` seconds, repeat (``once``: check once);
        the number of learns run. SIGTERM is handled like Ctrl-C while it runs (main thread only)."""
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._terminate)
        runs = 0
        try:
            while not self.stop.is_set():
                runs += self.check(verbose=once)
                if once:
                    break
                self.stop.wait(self.interval)
        except KeyboardInterrupt:
            self.stop.set()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if not once:
            self.echo("watch stopped")
        return runs

    def check(self, verbose: bool = True) -> int:
        """One round: learn every due specialist; the number of learns run. ``verbose`` prints
        every waiting decision, otherwise only those that changed since the last round."""
        from aeth.learning.schedule import due

        runs = 0
        for decision in due(self.app, self.names, practice=self.practice is not None):
            name = decision.specialist
            if self.stop.is_set():
                break
            if decision.action == "running":
                self.echo(f"{name}: skipped: {decision.reason} in another process")
                continue
            if not decision.due:
                line = f"{name}: not due: next {decision.reason}"
                if verbose or self._said.get(name) != line:
                    self.echo(line)
                self._said[name] = line
                continue
            self._said.pop(name, None)
            if self._gave_up.get(name) == decision.reason:
                if verbose:
                    self.echo(f"{name}: due ({decision.reason}) but its last try gave nothing; waiting for a change")
                continue
            runs += 1
            self._learn(name, decision)
        return runs

    def _learn(self, name: str, decision: Any) -> None:
        """Learn (or resume) ``name``, saying what happened in one line, and never raise but for a stop."""
        from aeth.learning.lock import LearnLocked
        from aeth.learning.run import learn

        self.echo(f"{name}: {'resuming' if decision.action == 'resume' else 'learning'}: {decision.reason}")
        self.learning = True
        try:
            result = learn(self.app, name, resume="latest" if decision.action == "resume" else None,
                           practice=self.practice if decision.action == "practice" else None,
                           echo=lambda line: self.echo(f"{name}: {line}"), **self.options)
        except LearnLocked as e:  # taken between the check and the learn
            self.echo(f"{name}: skipped: {e}")
            return
        except KeyboardInterrupt:  # outside the training loop (dataset, gate): an unfinished run is resumed later
            self.stop.set()
            self.echo(f"{name}: stopped; an unfinished run continues at the next check (or aeth learn {name} --resume)")
            return
        except AethError as e:
            self.failed += 1
            self._gave_up[name] = decision.reason
            self.echo(f"{name}: failed: {e}")
            return
        except Exception as e:  # noqa: BLE001  (one specialist's broken learn must not stop the others')
            self.failed += 1
            self._gave_up[name] = decision.reason
            self.echo(f"{name}: failed: {type(e).__name__}: {e}")
            return
        finally:
            self.learning = False
        if result.outcome == "nothing":
            self._gave_up[name] = decision.reason
        else:
            self._gave_up.pop(name, None)
        if result.outcome == "interrupted":  # Ctrl-C or SIGTERM reached the training loop, which checkpointed
            self.stop.set()
        # the learn already said its gate's verdict: a stored version needs only its name here
        self.echo(f"{name}: {result.outcome} {result.version.version}" if result.version is not None
                  else f"{name}: {result.outcome}: {result.message}")

    def _terminate(self, signum: int, frame: Any) -> None:
        """SIGTERM: stop after this round; a learn in progress gets a KeyboardInterrupt, as from Ctrl-C."""
        self.stop.set()
        if self.learning:
            raise KeyboardInterrupt
