"""``aeth distill``: learn from teacher models: collect their answers, or distil their token distributions."""

from __future__ import annotations

import signal
import threading

import click

from aeth.cli.root import active_config, cli, cli_app


@cli.group()
def distill():
    """Learn from teacher models (GPT-4o, Claude, any OpenAI-compatible server, local models).

    `collect` asks a teacher for answers and keeps them as a training set (sequence-level
    distillation, any teacher); `train` distils a local teacher's token distributions into a
    specialist's adapter (logit distillation, same tokenizer).

    \b
    Examples:
      aeth distill collect coding --teacher openai --n 2000
      aeth distill collect coding --teacher ollama --model qwen2.5:7b --n 500
      aeth distill collect writing --teacher local --n 100        the offline default model
      aeth distill collect reasoning --teacher specialist:coding  your coding specialist's active version
      aeth distill prices                                         the price table and where to edit it
      aeth train coding                                           trains on what was collected
      aeth distill train coding --teacher ./bigger-smollm2        logit distillation from a local model

    \b
    Teachers: `openai` (OPENAI_API_KEY), `anthropic` (ANTHROPIC_API_KEY), `ollama`, `local`,
    and your own under `teachers.<name>` in aeth.yaml:
      teachers:
        gateway: {kind: openai, base_url: "https://llm.example.com/v1", model: gpt-4o, api_key_env: GATEWAY_KEY}
    """


@distill.command()
@click.argument("specialist")
@click.option("--teacher", required=True, metavar="NAME", help="A registered teacher (see `aeth plugins --all`), one from `teachers.<name>` config, "
              "or specialist:NAME (one of your specialists, at its active version).")
@click.option("--model", metavar="ID", help="Ask the teacher for this model instead of its default.")
@click.option("--base-url", metavar="URL", help="Send an OpenAI-compatible or Anthropic teacher's requests here.")
@click.option("-n", "--n", "n", type=click.IntRange(1), default=2000, show_default=True, help="Prompts to answer.")
@click.option("--max-tokens", type=click.IntRange(1), default=512, show_default=True, help="Longest answer asked for; longer ones are dropped as truncated.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Which prompts, in which order.")
@click.option("--max-answer-chars", type=click.IntRange(1), default=8000, show_default=True, help="Drop answers longer than this.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True, help="Requests in flight at once.")
@click.option("--rpm", type=click.FloatRange(0), default=0, show_default=True, help="Most requests a minute (0 = no limit).")
@click.option("--retries", type=click.IntRange(0), default=5, show_default=True, help="Retries of a request on 429, 5xx, timeouts, malformed replies.")
@click.option("--backoff", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Seconds before the first retry, doubling each time (a Retry-After wins).")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True, help="Seconds to wait for one answer.")
@click.pass_context
def collect(ctx, specialist, teacher, model, base_url, n, max_tokens, temperature, seed, max_answer_chars, concurrency,
            rpm, retries, backoff, timeout):
    """Ask TEACHER to answer N of SPECIALIST's prompts; keep the good answers as a training set.

    Prompts come from the specialist's recipe (train split) and variations of them. Every answer
    is cached by (teacher, model, prompt, parameters), so a re-run never pays twice; Ctrl-C or a
    crash loses nothing: run the same command again and it resumes. Answers that are empty,
    refusals, truncated, too long or duplicates are dropped. The result is
    $AETH_HOME/datasets/SPECIALIST/<version>/ (records.jsonl + card.json), which `aeth train`
    reads. Cost is counted from the price table (`aeth distill prices`).
    """
    from aeth.distill.collect import CollectPlan, Options, finished_dataset, prices, run_dir, write_dataset
    from aeth.distill.collect import collect as run
    from aeth.distill.teachers import describe, get_teacher

    app = cli_app(ctx)
    config = app.config
    spec = app.specialist(specialist)
    chosen = get_teacher(app, teacher, model=model, base_url=base_url)
    plan = CollectPlan(specialist=spec.name, teacher=chosen.name, model=chosen.model, n=n, max_tokens=max_tokens,
                       temperature=temperature, seed=seed, max_answer_chars=max_answer_chars)
    home = config.home
    folder = run_dir(home, plan)
    done = finished_dataset(folder, home, spec.name)
    if done is not None:
        click.echo(f"already collected: {done} (same teacher, model and settings; nothing asked)", err=True)
        click.echo(str(done))
        return
    table, table_path = prices(home)
    if chosen.model not in table and not getattr(chosen, "local", False):
        click.secho(f"no price for {chosen.model!r}: tokens are counted, cost is not (add it to {table_path})",
                    err=True, fg="yellow")
    stop = threading.Event()
    bar = _Collecting()
    options = Options(concurrency=concurrency, rpm=rpm, retries=retries, backoff=backoff, timeout=timeout,
                      progress=bar)
    resumed = (folder / "results.jsonl").exists()
    click.echo(f"{'resuming' if resumed else 'collecting'} {n} answers from {describe(chosen)} for {spec.name} "
               f"-> {folder}", err=True)
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # finish what is in flight, then stop
    try:
        folder, totals = run(chosen, spec, plan, home, options, stop)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    if stop.is_set():
        click.secho(f"interrupted: {totals.done}/{totals.target} answers recorded; run the same command to resume",
                    err=True, fg="yellow")
        ctx.exit(130)
    path, card = write_dataset(folder, home, plan, chosen)
    spent = "unknown (no price)" if card["cost_usd"] is None else f"${card['cost_usd']:.4f}"
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(card["dropped"].items())) or "none"
    click.echo(f"{card['records']} records from {card['prompts']} prompts (dropped: {dropped}); "
               f"{card['tokens_in']} tokens in, {card['tokens_out']} out, cost {spent}; "
               f"{card['answers_from_cache']} answers from the cache", err=True)
    click.echo(str(path))


@distill.command("prices")
@click.pass_context
def prices_cmd(ctx):
    """Show the price table (USD per million tokens) and the file that overrides it."""
    from aeth.distill.collect import prices

    table, path = prices(active_config(ctx).home)
    for model, (price_in, price_out) in sorted(table.items()):
        click.echo(f"{model:32} in {price_in:8.3f}  out {price_out:8.3f}")
    click.echo(f"\nedit {path} to add or change a model, e.g.\n  my-model: {{input: 1.0, output: 3.0}}", err=True)


class _Collecting:
    """``collect``'s progress callback on an :class:`aeth.progress.Progress`, with the cost so far
    (made at the first answer, when the number of prompts is known)."""

    def __init__(self):
        self.bar = None

    def __call__(self, t: dict) -> None:
        from aeth.progress import Progress

        if self.bar is None:
            self.bar = Progress("collect", t["target"], done=t["done"] - 1, unit="answers").__enter__()
        money = f"${t['cost']:.4f}" + ("" if t["priced"] else "+?")
        self.bar.update(t["done"], f"cost {money}, {t['requests']} requests, {t['cached']} cached, {t['retries']} retries")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
