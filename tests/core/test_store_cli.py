"""`aeth keys`, `aeth log`, and the answers `aeth run` and `aeth chat` log."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeth.cli import cli
from aeth.plugins import default_host
from aeth.store import Interaction, Store

AETH = str(Path(sys.executable).with_name("aeth"))
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def invoke(*args, input=None):
    default_host()
    return CliRunner().invoke(cli, list(args), input=input)


def seed(url, home, n=3):
    """``n`` interactions, an hour apart from T0, alternating specialists; their ids."""
    store = Store.open(url, home)
    ids = [store.record(Interaction(messages=[{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": f"question number {i}"}],
                                    answer=f"answer number {i}", specialist=("coding", "general")[i % 2],
                                    adapter="v0001" if i % 2 == 0 else None, source=("run", "serve", "chat")[i % 3],
                                    tokens_in=100, tokens_out=200, latency_s=1.0 + i, ttft_s=0.1, machine_seconds=2.0,
                                    finish_reason="stop", created=T0 + timedelta(hours=i)))
           for i in range(n)]
    store.close()
    return ids


@pytest.fixture(params=["sqlite", "postgres"])
def store_opts(request):
    """The ``-o`` options that pick the database: none (SQLite in $AETH_HOME), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ()
    return ("-o", f"store.url={request.getfixturevalue('postgres_db')}")


def test_keys_create_list_revoke(aeth_home, store_opts):
    from aeth.plugins import AethWarning

    with pytest.warns(AethWarning, match="no installed specialist is called 'nosuch'"):
        created = invoke(*store_opts, "keys", "create", "my-app", "--rpm", "60", "--specialists", "coding,nosuch")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("aeth-") and "\n" not in secret
    assert "not stored and cannot be shown again" in created.stderr and "60 requests/min" in created.stderr
    listing = invoke(*store_opts, "keys", "list")
    assert "my-app" in listing.stdout and secret[:9] + "..." in listing.stdout and secret[9:] not in listing.stdout
    assert "coding,nosuch" in listing.stdout
    rows = json.loads(invoke(*store_opts, "keys", "list", "--json").stdout)
    assert [(r["name"], r["rpm"], r["tpm"], r["revoked"]) for r in rows] == [("my-app", 60, None, None)]
    again = invoke(*store_opts, "keys", "create", "my-app")
    assert again.exit_code == 1 and "already called 'my-app'" in again.stderr and "aeth keys revoke my-app" in again.stderr
    revoked = invoke(*store_opts, "keys", "revoke", "my-app")
    assert revoked.exit_code == 0 and "revoked API key 'my-app'" in revoked.stderr
    assert "no API keys" in invoke(*store_opts, "keys", "list").stderr
    assert "revoked" in invoke(*store_opts, "keys", "list", "--all").stdout
    assert invoke(*store_opts, "keys", "revoke", "my-app").exit_code == 1
    url = store_opts[1].split("=", 1)[1] if store_opts else None
    store = Store.open(url, aeth_home)
    assert store.verify_key(secret) is None and store.keys(include_revoked=True)[0].name == "my-app"
    store.close()


def test_log_list_show_export_stats(aeth_home, store_opts, tmp_path):
    url = store_opts[1].split("=", 1)[1] if store_opts else None
    ids = seed(url, aeth_home, 4)
    store = Store.open(url, aeth_home)
    store.record_feedback(ids[1], "rating", 4, comment="good enough")
    store.close()

    listing = invoke(*store_opts, "log", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "(UTC)"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]  # newest first
    assert "coding@v0001" in listing.stdout and "question number 2" in listing.stdout
    only = invoke(*store_opts, "log", "list", "--specialist", "general", "--limit", "1", "--json").stdout.splitlines()
    assert [json.loads(x)["id"] for x in only] == [ids[3]]
    assert [json.loads(x)["id"] for x in invoke(*store_opts, "log", "list", "--source", "serve", "--json").stdout.splitlines()] == [ids[1]]

    shown = invoke(*store_opts, "log", "show", ids[1][:10])
    assert shown.exit_code == 0, shown.output
    assert f"interaction {ids[1]}: serve" in shown.stdout and "--- system ---\nBe brief." in shown.stdout
    assert "--- answer ---\nanswer number 1" in shown.stdout and "rating 4 (good enough)" in shown.stdout
    full = json.loads(invoke(*store_opts, "log", "show", "--json", ids[1]).stdout)
    assert full["answer"] == "answer number 1" and full["feedback"][0]["value"] == 4
    missing = invoke(*store_opts, "log", "show", "abcdef")
    assert missing.exit_code == 1 and "no interaction 'abcdef'" in missing.stderr

    out = tmp_path / "log.jsonl"
    exported = invoke(*store_opts, "log", "export", "--jsonl", str(out), "--since", (T0 + timedelta(hours=2)).isoformat())
    assert exported.exit_code == 0 and "exported 2 interactions" in exported.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ids[2:]
    piped = invoke(*store_opts, "log", "export", "--jsonl", "-")
    assert [json.loads(x)["answer"] for x in piped.stdout.splitlines()] == [f"answer number {i}" for i in range(4)]
    assert invoke(*store_opts, "log", "export", "--since", "yesterday-ish").exit_code == 2
    assert invoke(*store_opts, "log", "export", "--since", "1d").stdout == ""  # T0 is long ago

    stats = invoke(*store_opts, "-o", "cost.machine_per_hour=0.36", "log", "stats")
    assert stats.exit_code == 0, stats.output
    assert "answers: 4 (chat 1, run 2, serve 1)" in stats.stdout and "tokens: 400 in, 800 out" in stats.stdout
    assert "latency: p50 2.00 s, p95 4.00 s" in stats.stdout
    # 8 machine seconds at $0.36/h = $0.0008; gpt-4o: 400 * 2.50 + 800 * 10.00 per million = $0.009, 11.2x
    assert "aeth" in stats.stdout and "$0.0008" in stats.stdout and "gpt-4o " in stats.stdout and "11.2x" in stats.stdout
    data = json.loads(invoke(*store_opts, "log", "stats", "--json", "--specialist", "coding").stdout)
    assert data["interactions"] == 2 and data["cost"]["machine_per_hour"] == 0.10


def test_help_teaches_and_never_imports_the_database(aeth_home):
    for args, teaches in ((["log", "--help"], "aeth log show 3f2a9c"), (["keys", "--help"], "aeth keys create my-app"),
                          (["log", "stats", "--help"], "cost.machine_per_hour"), (["keys", "create", "--help"], "once")):
        out = invoke(*args)
        assert out.exit_code == 0 and teaches in out.stdout, args
    probe = textwrap.dedent("""
        import sys
        from aeth.cli import main
        for args in (["--help"], ["log", "--help"], ["keys", "--help"]):
            try:
                main(args)
            except SystemExit as e:
                assert not e.code, e.code
        print("LOADED", sorted(m for m in ("sqlalchemy", "alembic", "torch") if m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env={**os.environ, "AETH_HOME": str(aeth_home)}, timeout=120)
    assert out.returncode == 0 and "LOADED []" in out.stderr, out.stderr


def test_aeth_run_logs_its_answer(aeth_home, tiny_model_dir):
    model = ("-o", f"model.default={tiny_model_dir}")
    result = invoke(*model, "run", "--json", "-s", "general", "--max-tokens", "5", "--seed", "0", "hello there")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["interaction"]) == 24 and f"interaction: {data['interaction']}" in result.stderr
    store = Store.open(None, aeth_home)
    row = store.get(data["interaction"])
    assert row.source == "run" and row.specialist == "general" and row.answer == data["text"]
    assert row.messages[-1] == {"role": "user", "content": "hello there"} and row.model == str(tiny_model_dir)
    assert (row.tokens_in, row.tokens_out, row.finish_reason) == (data["tokens_in"], data["tokens_out"], data["finish_reason"])
    assert row.sampling["max_tokens"] == 5 and row.sampling["seed"] == 0
    assert 0 < row.machine_seconds <= row.latency_s == data["seconds"] and row.ttft_s is not None
    assert row.route["reason"] == "chosen with --specialist"

    streamed = invoke(*model, "run", "-s", "general", "--max-tokens", "3", "--seed", "0", "hi")
    iid = streamed.stderr.strip().splitlines()[-1].removeprefix("interaction: ")
    assert store.get(iid).answer == streamed.stdout.strip()
    quiet = invoke(*model, "run", "-q", "-s", "general", "--max-tokens", "3", "--seed", "0", "hi")
    assert quiet.stderr == "" and store.stats()["interactions"] == 3

    off = invoke(*model, "-o", "store.log_interactions=false", "run", "--json", "-s", "general", "--max-tokens", "3", "hi")
    assert json.loads(off.stdout)["interaction"] is None and "interaction:" not in off.stderr
    assert store.stats()["interactions"] == 3
    store.close()


def test_a_run_whose_database_is_down_still_answers(aeth_home, tiny_model_dir):
    from aeth.testing import _free_port

    result = subprocess.run([AETH, "-o", f"model.default={tiny_model_dir}", "-o", "model.threads=1", "-o",
                             f"store.url=postgresql://aeth@127.0.0.1:{_free_port()}/x", "run", "--json", "-s", "general",
                             "--max-tokens", "3", "--seed", "0", "hi"], capture_output=True, text=True,
                            env={**os.environ, "AETH_HOME": str(aeth_home)}, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["interaction"] is None and data["tokens_out"] > 0
    assert "warning: the answer was not logged: cannot reach PostgreSQL" in result.stderr


def test_aeth_chat_logs_each_turn(aeth_home, tiny_model_dir):
    env = {**os.environ, "AETH_HOME": str(aeth_home)}
    done = subprocess.run([AETH, "-o", f"model.default={tiny_model_dir}", "-o", "model.threads=1", "chat", "-s", "general",
                           "--max-tokens", "4", "--seed", "0"], input="first turn\nsecond turn\n", capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    store = Store.open(None, aeth_home)
    second, first = store.list()
    store.close()
    assert (first.source, second.source) == ("chat", "chat")
    assert first.messages[-1]["content"] == "first turn"
    assert [m["content"] for m in second.messages[-3:]] == ["first turn", first.answer, "second turn"]
    assert first.metadata["conversation"] == second.metadata["conversation"]
    assert (aeth_home / "chats" / f"{first.metadata['conversation']}.jsonl").exists()
