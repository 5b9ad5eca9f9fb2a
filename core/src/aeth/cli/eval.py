"""``aeth eval``: run a specialist's eval suite, list saved runs, compare two of them."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import click

from aeth.cli.root import cli, cli_app


@cli.command("eval")
@click.argument("specialist", required=False)
@click.option("--limit", type=click.IntRange(1), metavar="N", help="Run at most N cases (taken round-robin from the suite's benchmarks).")
@click.option("--samples", type=click.IntRange(1), metavar="N", help="Answers per case (pass@k needs more than 1); default: the suite's.")
@click.option("--temperature", type=click.FloatRange(0, 10), help="Sampling temperature; default: the suite's (0 = greedy).")
@click.option("--max-tokens", type=click.IntRange(1), help="Longest answer; default: the suite's.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the first sample.")
@click.option("--base", metavar="MODEL", help="Evaluate on this base model instead of the specialist's (built-in name, directory or hub id).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.option("--output", type=click.Path(dir_okay=False), help="Save the report here (default: $AETH_HOME/evals/<specialist>/).")
@click.option("--no-save", is_flag=True, help="Do not save the report.")
@click.option("--show", type=click.IntRange(0), default=0, metavar="N", help="Also print the N lowest-scoring cases.")
@click.option("--list", "list_runs", is_flag=True, help="List saved reports (of SPECIALIST, if given).")
@click.option("--compare", nargs=2, metavar="A B", help="Compare two saved reports (run ids or files): B against A.")
@click.option("--sweep", is_flag=True, help="Choose sampling defaults by this suite: try greedy and sampled settings on "
              "half the cases (--limit N each half, --samples N per sampled case, default 3), report the best and "
              "the current defaults on the other half.")
@click.pass_context
def eval_cmd(ctx, specialist, limit, samples, temperature, max_tokens, seed, base, as_json, output, no_save, show,
             list_runs, compare, sweep):
    """Run SPECIALIST's eval suite and print its scores; save the report for later comparison.

    \b
    Examples:
      aeth eval coding --limit 20          HumanEval problems run in the code sandbox, pass@1
      aeth eval coding --samples 5         five answers per problem: pass@1 and pass@5
      aeth eval reasoning --json           the whole report as JSON
      aeth eval --list                     saved reports, newest last
      aeth eval --compare 2026 2026113     B against A, per benchmark and case by case
      aeth eval general --sweep            which temperature / top-p / repetition penalty scores best
    """
    app = cli_app(ctx)
    cfg = app.config
    from aeth.evals import store

    if compare:
        _print_comparison(*(store.load(ref, cfg.home) for ref in compare), as_json)
        return
    if list_runs:
        _print_saved(store.saved(cfg.home, specialist), as_json)
        return
    if not specialist:
        raise click.UsageError("name a specialist to evaluate (see `aeth specialists`), or use --list / --compare")
    if sweep:
        if temperature is not None or max_tokens or output or show:
            raise click.UsageError("--sweep tries its own settings and saves no report: drop --temperature, "
                                   "--max-tokens, --output and --show")
        _sweep(app, specialist, limit, samples or 3, base, as_json)
        return
    report = _run(app, specialist, limit, samples, temperature, max_tokens, seed, base)
    path = None if no_save else store.save(report, cfg.home, output)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    _print_report(report, show)
    if path:
        click.echo(f"saved {path} (run id {report.meta['run_id']})", err=True)


def _run(app, name, limit, samples, temperature, max_tokens, seed, base):
    import time

    from aeth import __version__
    from aeth.errors import SpecialistError
    from aeth.evals.model import specialist_model
    from aeth.evals.runner import PROGRESS_WITHOUT_TTY, run_evaluation

    spec = app.specialist(name)
    if spec.suite is None:
        raise SpecialistError(f"specialist {name!r} (plugin {spec.plugin!r}) has no eval suite")
    active = app.adapters.active(spec.name)
    if base:
        spec = replace(spec, base_model=base)
        if active is not None:  # an adapter belongs to the base it was trained on
            click.echo(f"--base {base}: evaluating the bare model, without {spec.name}'s adapter {active.version} "
                       f"(trained on {active.manifest.get('base_model')})", err=True)
    suite = spec.suite
    temperature = suite.temperature if temperature is None else temperature
    if (samples or suite.samples) > 1 and temperature == 0:
        raise click.UsageError("several samples per case at temperature 0 would all be the same answer; "
                               "pass --temperature (e.g. 0.8)")
    model = specialist_model(app, spec, temperature=temperature, max_tokens=max_tokens or suite.max_tokens, seed=seed,
                             adapter="base" if base else None)
    token = PROGRESS_WITHOUT_TTY.set("lines")  # a long eval under nohup or in CI still says how far it is
    try:
        report = run_evaluation(app, spec, model, limit=limit, samples=samples)
    finally:
        PROGRESS_WITHOUT_TTY.reset(token)
    loaded = [m for m in app.models.loaded if m.name == spec.base_model]
    answered = sorted(model.answered_by, key=str)
    report.meta.update({
        "specialist_version": spec.version, "plugin": spec.plugin, "base_model": spec.base_model,
        "model": _model_meta(loaded[0]) if loaded else None,
        # the adapter version(s) that answered; None: the bare base model
        "adapter": answered[0] if len(answered) == 1 else answered or None,
        "settings": {"limit": limit, "samples": samples or suite.samples, "temperature": temperature,
                     "max_tokens": max_tokens or suite.max_tokens, "seed": seed},
        "suite_source": suite.source, "aeth_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return report


def _sweep(app, name, limit, samples, base, as_json) -> None:
    from aeth.evals.sweep import sweep

    spec = app.specialist(name)
    if base:
        spec = replace(spec, base_model=base)
    result = sweep(app, spec, samples=samples, limit=limit, adapter="base" if base else None,
                   echo=None if as_json else (lambda line: click.echo(line, err=True)))
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(f"{spec.name}: chosen {result.chosen.label}: {result.check_chosen:.3f} on {result.check_cases} check cases; "
               f"current defaults {result.current.label}: {result.check_current:.3f}")
    if result.sampled_vs_greedy_p is not None:
        click.echo(f"best sampled vs best greedy on the tune cases: sign test p = {result.sampled_vs_greedy_p:.3f} "
                   "(sampling is chosen only when better with p < 0.05)")
    if result.chosen != result.current:
        c = result.chosen
        click.echo(f"to use it: GenerationDefaults(temperature={c.temperature:g}, top_p={c.top_p:g}, "
                   f"repetition_penalty={c.repetition_penalty:g}) in the specialist's plugin, or for every specialist "
                   f"-o generation.temperature={c.temperature:g} -o generation.top_p={c.top_p:g} "
                   f"-o generation.repetition_penalty={c.repetition_penalty:g}")


def _model_meta(loaded) -> dict:
    return {"name": loaded.name, "path": str(loaded.path), "dtype": loaded.dtype, "quantization": loaded.quantization,
            "device": loaded.device, "parameters": loaded.n_params}


def _console():
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=False)


def _print_report(report, show: int) -> None:
    from rich.table import Table

    table = Table("benchmark", "cases", report.metric, box=None, title=f"{report.specialist}: {report.suite} {report.suite_version}",
                  title_justify="left")
    for group, row in report.groups.items():
        table.add_row(group or report.suite, str(row["n"]), f"{row['score']:.3f}")  # a suite without groups is one benchmark
    if len(report.groups) > 1:
        table.add_row("overall (mean of cases)", str(report.n), f"{report.score:.3f}")
    if report.meta.get("settings", {}).get("samples", 1) > 1:  # with one sample, pass@1 is the score above
        for key, value in report.pass_at_k.items():
            table.add_row(key, str(report.n), f"{value:.3f}")
    console = _console()
    console.print(table)
    failed = [c for c in report.cases if c.errors]
    if failed:
        console.print(f"{len(failed)} case(s) could not be answered and scored 0, e.g. {failed[0].id}: {failed[0].errors[0]}",
                      style="yellow", markup=False, highlight=False)
    model = report.meta.get("model") or {}
    console.print(f"model {model.get('name', report.meta.get('base_model'))} ({model.get('dtype', '?')}, "
                  f"{model.get('quantization', '?')}), adapter {report.meta.get('adapter') or 'none'}; "
                  f"{report.seconds:.0f} s", style="dim")
    for case in sorted(report.cases, key=lambda c: c.score)[:show]:
        group = f" ({case.group})" if case.group else ""
        console.print(f"\n[bold]{case.id}[/bold]{group} score {case.score:.2f}", highlight=False)
        console.print(f"prompt: {case.prompt[:300]}", markup=False, highlight=False)
        console.print(f"answer: {case.answers[0][:500]}", markup=False, highlight=False)


def _print_saved(paths, as_json: bool) -> None:
    import json as _json

    rows = []
    for p in paths:
        try:
            data = _json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append({"run_id": p.stem, "specialist": data["specialist"], "suite": f"{data['suite']} {data['suite_version']}",
                     "cases": data["n"], "score": round(data["score"], 4), "created": data.get("meta", {}).get("created", ""),
                     "model": (data.get("meta", {}).get("model") or {}).get("name", ""), "path": str(p)})
    if as_json:
        click.echo(_json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no saved eval reports yet: run `aeth eval SPECIALIST`", err=True)
        return
    from rich.table import Table

    table = Table("run id", "specialist", "suite", "cases", "score", "model", box=None)
    for r in rows:
        table.add_row(r["run_id"], r["specialist"], r["suite"], str(r["cases"]), f"{r['score']:.3f}", r["model"])
    _console().print(table)


def _print_comparison(a, b, as_json: bool) -> None:
    from aeth.evals.store import compare

    cmp = compare(a, b)
    if as_json:
        click.echo(json.dumps({"a": a.meta.get("run_id"), "b": b.meta.get("run_id"), "rows": cmp.rows, "common_cases": cmp.common,
                               "b_better": cmp.better, "b_worse": cmp.worse, "p_value": cmp.p_value}))
        return
    from rich.table import Table

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    table = Table("", f"A {a.meta.get('run_id', '')}", f"B {b.meta.get('run_id', '')}", "B - A", box=None,
                  title=f"{a.suite}: B against A", title_justify="left")
    for group, sa, sb in cmp.rows:
        delta = "-" if sa is None or sb is None else f"{sb - sa:+.3f}"
        table.add_row(group or a.suite, fmt(sa), fmt(sb), delta)
    console = _console()
    console.print(table)
    console.print(f"on the {cmp.common} cases both ran: B better on {cmp.better}, worse on {cmp.worse} "
                  f"(sign test p = {cmp.p_value:.3g})", highlight=False)
