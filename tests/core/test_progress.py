"""aeth.progress: one way to show progress for training, evals, teacher collection and routing.

Off a terminal a line every ~10 % with elapsed time and eta; on one a rich bar; nothing when not
shown or inside ``quiet()``.
"""

import io
from dataclasses import replace

from aeth.progress import Progress, quiet


class Terminal(io.StringIO):
    def isatty(self):
        return True


def count_to(total, **options):
    stream = options.pop("stream", None) or io.StringIO()
    with Progress("work", total, unit="items", stream=stream, **options) as bar:
        for done in range(options.get("done", 0) + 1, total + 1):
            bar.update(done, f"at {done}")
    return stream.getvalue().splitlines()


def test_off_a_terminal_a_line_every_tenth_with_elapsed_and_eta():
    lines = count_to(20)
    assert [line.split()[1] for line in lines] == [f"{n}/20" for n in range(2, 21, 2)]
    assert lines[0].startswith("work: 2/20 items, at 2, ") and lines[0].endswith(" s") and " s elapsed, eta " in lines[0]
    assert lines[-1].endswith("eta 0 s")
    assert [line.split()[1] for line in count_to(20, done=13)] == ["14/20", "16/20", "18/20", "20/20"]  # resumed
    assert [line.split()[1] for line in count_to(3)] == ["1/3", "2/3", "3/3"]


def test_nothing_when_not_shown_or_quiet_or_lines_not_wanted():
    assert count_to(20, show=False) == []
    assert count_to(20, lines=False) == []
    with quiet():
        assert count_to(20) == []
        with quiet(False):  # quiet(False) does not turn progress back on
            assert count_to(20) == []
    assert len(count_to(20)) == 10


def test_on_a_terminal_a_bar_and_no_lines():
    stream = Terminal()
    lines = count_to(20, stream=stream)
    assert not any(line.startswith("work: ") for line in lines)
    assert "work" in stream.getvalue() and "20/20" in stream.getvalue()


def test_eval_progress_lines_when_the_caller_asks(capsys):
    from aeth import EvalCase, EvalSuite
    from aeth.evals.runner import PROGRESS_WITHOUT_TTY, run_suite
    from aeth.testing import adder_specialist

    cases = [EvalCase(f"c{i}", f"What is {i} plus 1?") for i in range(4)]
    suite = EvalSuite("sums", "1", lambda: cases, lambda case, answer: 1.0)
    spec = replace(adder_specialist(), suite=suite)
    said = {}
    for mode in ("none", "lines"):  # none: library use stays silent off a terminal
        token = PROGRESS_WITHOUT_TTY.set(mode)
        try:
            run_suite(spec, suite, lambda prompt, **options: "2", progress=True)
        finally:
            PROGRESS_WITHOUT_TTY.reset(token)
        said[mode] = capsys.readouterr().err
    assert said["none"] == ""
    lines = said["lines"].splitlines()
    assert [line.split(",")[0] for line in lines] == [f"adder: sums: {n}/4 answers" for n in range(1, 5)]


def test_collect_progress_shows_the_cost(capsys):
    from aeth.cli.distill import _Collecting

    show = _Collecting()
    for done in range(3, 11):
        show({"target": 10, "done": done, "cost": 0.5 * done, "priced": done < 9, "requests": done, "cached": 2,
              "retries": 0})
    show.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("collect: 3/10 answers, cost $1.5000, 3 requests, 2 cached, 0 retries, ")
    assert lines[-1].startswith("collect: 10/10 answers, cost $5.0000+?, ")
    assert len(lines) == 8
