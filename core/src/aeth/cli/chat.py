"""``aeth chat``: an interactive conversation at constant memory, saved as it goes, resumable by id."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

import click

from aeth.cli.root import cli, cli_app

COMMANDS = """\
/specialist [NAME|auto]  show who answers, pin NAME for every turn, or route each turn (auto)
/reset                   start a new conversation (this one stays saved)
/save [FILE]             say where the conversation is saved; with FILE, also write it as Markdown
/stats                   turns, tokens seen, KV cache held and its capacity, process memory
/help                    this list
/exit                    leave (Ctrl-D too); Ctrl-C stops a reply, not the session"""


HELP = """Talk with aeth, turn after turn, at constant memory.

Each model keeps an attention-sink KV cache across turns (`cache.sinks` first tokens plus a
rolling `cache.window` of recent ones), so a turn costs the same at turn 2 and at turn 2,000
and memory never grows. What rolls out of the window is forgotten. Every turn is saved to
$AETH_HOME/chats/ as it ends; continue later with --resume.

\b
Examples:
  aeth chat                          routed per turn
  aeth chat -s writing               one specialist throughout
  aeth chat --resume last            continue the newest conversation
  aeth chat --list                   saved conversations
  aeth -o cache.window=1024 chat     a smaller window: less memory, shorter recall

\b
In the chat:
"""


@cli.command(help=HELP + "\n".join("  " + line for line in COMMANDS.splitlines()))
@click.option("-s", "--specialist", metavar="NAME", help="Answer every turn with this specialist (default: route each turn).")
@click.option("--resume", "resume", metavar="ID", help="Continue a saved conversation: its id, the start of it, or `last`.")
@click.option("--list", "list_", is_flag=True, help="List saved conversations, newest first, and exit.")
@click.option("--temperature", type=click.FloatRange(0, 10), help="Sampling temperature; 0 = greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass.")
@click.option("--top-k", type=click.IntRange(0), help="Sample from the k likeliest tokens (0 = off).")
@click.option("--max-tokens", type=click.IntRange(1), help="Most tokens per reply.")
@click.option("--seed", type=click.IntRange(0), help="Random seed of the first reply (each turn uses the next one).")
@click.option("-q", "--quiet", is_flag=True, help="Do not say on stderr which specialist answered each turn.")
@click.pass_context
def chat(ctx, specialist, resume, list_, temperature, top_p, top_k, max_tokens, seed, quiet):
    from aeth.chat import ChatMemory, Conversation, saved

    app = cli_app(ctx)
    config = app.config
    if list_:
        _list(saved(config.home))
        return
    if specialist:
        app.specialist(specialist)  # an unknown name fails now, not at the first turn
    if resume:
        convo = Conversation.load(config.home, resume)
        if specialist and specialist != convo.specialist:
            convo.pin(specialist)
    else:
        convo = Conversation.new(config.home, specialist)
    session = _Session(app, convo, ChatMemory(), dict(temperature=temperature, top_p=top_p, top_k=top_k,
                                                      max_tokens=max_tokens), seed, quiet)
    session.loop(resumed=bool(resume))


class _Session:
    def __init__(self, app, convo, memory, sampling, seed, quiet):
        self.app, self.convo, self.memory, self.sampling, self.seed, self.quiet = app, convo, memory, sampling, seed, quiet
        self.interactive = sys.stdin.isatty()
        self.tokens_in = self.tokens_out = 0

    def loop(self, resumed: bool) -> None:
        who = self.convo.specialist or "routed per turn"
        if resumed:
            self._say(f"resumed conversation {self.convo.id}: {self.convo.turns} turns, {who}")
            last = self.convo.history()[-2:]
            for m in last:
                self._say(f"  {'you' if m['role'] == 'user' else 'aeth'}: {_short(m['content'])}")
        else:
            self._say(f"conversation {self.convo.id} ({who}); /help for commands, Ctrl-D to leave")
        while True:
            try:
                line = self._read_line()
            except EOFError:
                break
            except KeyboardInterrupt:
                click.echo("")
                self._say("(Ctrl-D or /exit to leave)")
                continue
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if self._command(line) == "exit":
                    break
                continue
            self._turn(line)
        self._say(f"saved as {self.convo.id}; continue with `aeth chat --resume {self.convo.id}`")

    def _read_line(self) -> str:
        """The next line: typed at the prompt, or from a script on stdin (as UTF-8, bad bytes replaced)."""
        if self.interactive:
            return input("you> ")
        from aeth.cli.run import decode_input

        raw = sys.stdin.buffer.readline() if hasattr(sys.stdin, "buffer") else sys.stdin.readline()
        if not raw:
            raise EOFError
        return decode_input(raw, "standard input")

    def _turn(self, text: str) -> None:
        from aeth.errors import AethError, PolicyBlocked
        from aeth.request import Request

        seed = None if self.seed is None else self.seed + self.convo.turns
        request = Request(prompt=text, specialist=self.convo.specialist, history=self.convo.history(), seed=seed,
                          **self.sampling)
        stop = threading.Event()
        try:
            answer = self.app.stream(request, chat=self.memory, cancel=stop.is_set)
        except AethError as e:  # blocked input, no router: the session goes on
            if isinstance(e, PolicyBlocked):
                self.app.log_blocked(request, e, "chat")
            self._say(f"error: {e}", fg="red")
            return
        if not self.quiet and not self.convo.specialist:
            self._say(f"[{answer.specialist.name}] {answer.bid.reason}", dim=True)
        self.convo.add("user", text)  # on disk before the reply starts
        parts: list[str] = []
        interrupted = False
        try:
            with _ctrl_c_sets(stop):
                for piece in answer:
                    parts.append(piece)
                    click.echo(piece, nl=False)
                    sys.stdout.flush()
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once (the model's cache is rebuilt next turn)
            interrupted = True
        except AethError as e:
            click.echo("")
            self._say(f"error: {e}", fg="red")
            return
        click.echo("")
        response = answer.response
        interrupted = interrupted or (response is not None and response.finish_reason == "cancelled")
        if interrupted:
            self._say("interrupted", fg="yellow")
        self.convo.add("assistant", "".join(parts).strip(), specialist=answer.specialist.name,
                       adapter=response.adapter if response else None, interrupted=True if interrupted else None)
        if response is not None:
            self.tokens_in += response.tokens_in
            self.tokens_out += response.tokens_out
            self.app.log_answer(answer, "chat", metadata={"conversation": self.convo.id})

    def _command(self, line: str) -> str | None:
        from aeth.chat import Conversation
        from aeth.errors import AethError

        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name in ("/exit", "/quit"):
            return "exit"
        if name == "/help":
            click.echo(COMMANDS)
        elif name == "/specialist":
            if not arg:
                self._say(f"answering: {self.convo.specialist or 'routed per turn'}; installed: "
                          f"{', '.join(sorted(self.app.specialists()))}")
            elif arg == "auto":
                self.convo.pin(None)
                self._say("routing each turn")
            else:
                try:
                    self.convo.pin(self.app.specialist(arg).name)
                except AethError as e:
                    self._say(f"error: {e}", fg="red")
                    return None
                self._say(f"{arg} answers from now on")
        elif name == "/reset":
            old = self.convo.id
            self.convo = Conversation.new(self.app.config.home, self.convo.specialist)
            self.memory.reset()
            self._say(f"new conversation {self.convo.id}; {old} stays saved")
        elif name == "/save":
            if arg:
                from pathlib import Path

                Path(arg).expanduser().write_text(self.convo.markdown(), encoding="utf-8")
                self._say(f"wrote {arg}")
            self._say(f"saved after every turn to {self.convo.path}; resume with `aeth chat --resume {self.convo.id}`")
        elif name == "/stats":
            self._stats()
        else:
            self._say(f"unknown command {name}; /help lists them", fg="red")
        return None

    def _stats(self) -> None:
        s = self.memory.stats()
        click.echo(f"conversation {self.convo.id}: {self.convo.turns} turns, "
                   f"{self.convo.specialist or 'routed per turn'}; this session {self.tokens_in} tokens in, "
                   f"{self.tokens_out} out")
        if s:
            capacity = s["cache_capacity"]
            kind = (f"{s['cache_sinks']} sinks + {capacity - s['cache_sinks']} window" if capacity
                    else "growing (this model cannot roll its cache)")
            click.echo(f"cache: {kind}; {s['cache_tokens']} tokens held of {capacity or 'unbounded'} "
                       f"({_size(s['cache_bytes'])}); {s['tokens_seen']} tokens seen")
        else:
            click.echo("cache: empty (no reply yet in this session)")
        click.echo(f"process memory: {_rss_mib():.0f} MiB")

    def _say(self, text: str, **style) -> None:
        click.secho(text, err=True, **style)


@contextlib.contextmanager
def _ctrl_c_sets(event: threading.Event):
    """While replying, the first Ctrl-C only sets ``event`` (the reply stops at the next token, its
    cache intact); a second one raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _rss_mib() -> float:
    """The process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _list(files) -> None:
    import json

    if not files:
        click.echo("no saved conversations yet; start one with `aeth chat`", err=True)
        return
    for path in files:
        first, turns = "", 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(json.JSONDecodeError):
                    record = json.loads(line)
                    if record.get("role") == "user":
                        turns += 1
                        first = first or record["content"]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        click.echo(f"{path.stem}  {when}  {turns:>4} turns  {_short(first, 60)}")
