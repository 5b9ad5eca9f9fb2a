"""The store: interactions, API keys and feedback on SQLite and on a real PostgreSQL server;
migrations; several processes and threads at once; rows acknowledged before a SIGKILL survive it."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aeth.store import ApiKey, Interaction, KeyNameTaken, Store, StoreError, StoreUnavailable, UnknownInteraction, UnknownKey
from aeth.store.cost import Pricing
from aeth.store.migrations import HEAD

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    """(url, home) of an empty database: SQLite in ``home``, or a fresh database on the session's PostgreSQL."""
    url = request.getfixturevalue("postgres_db") if request.param == "postgres" else None
    return url, tmp_path / "home"


@pytest.fixture
def store(db):
    s = Store.open(*db)
    yield s
    s.close()


def make(n=0, **kw):
    fields = dict(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"question {n}"}],
                  answer=f"answer {n}", specialist="general", source="run", model="tiny", tokens_in=10 + n,
                  tokens_out=20 + n, latency_s=1.0 + n, machine_seconds=0.5 + n, finish_reason="stop",
                  sampling={"temperature": 0.0, "seed": n}, route={"specialist": "general", "reason": "test", "bids": []})
    fields.update(kw)
    return Interaction(**fields)


def test_record_then_get_returns_every_field(store):
    iid = store.record(make(1, adapter="v0002", ttft_s=0.25, key_id="k1", group_id="g1", choice_index=1,
                            metadata={"conversation": "c1", "nested": {"a": [1, 2]}}))
    assert len(iid) == 24 and int(iid, 16) >= 0
    got = store.get(iid)
    assert got.id == iid and got.created.tzinfo is not None
    assert abs(got.created - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert got.messages[0] == {"role": "system", "content": "Be brief."} and got.prompt == "question 1"
    assert (got.answer, got.specialist, got.adapter, got.model, got.source) == ("answer 1", "general", "v0002", "tiny", "run")
    assert (got.tokens_in, got.tokens_out, got.latency_s, got.ttft_s, got.machine_seconds) == (11, 21, 2.0, 0.25, 1.5)
    assert (got.key_id, got.group_id, got.choice_index, got.finish_reason) == ("k1", "g1", 1, "stop")
    assert got.sampling == {"temperature": 0.0, "seed": 1} and got.route["reason"] == "test"
    assert got.metadata == {"conversation": "c1", "nested": {"a": [1, 2]}}
    assert store.get("0" * 24) is None


def test_text_postgresql_cannot_hold_is_kept_the_same_on_both(store):
    iid = store.record(make(messages=[{"role": "user", "content": "nul\x00 and ünïcødé ✓"}], answer="a\x00b"))
    got = store.get(iid)
    assert got.messages[0]["content"] == "nul\ufffd and ünïcødé ✓" and got.answer == "a\ufffdb"


def test_given_ids_are_kept_and_a_duplicate_is_refused(store):
    assert store.record(make(id="abc123")) == "abc123"
    with pytest.raises(StoreError, match="already stored"):
        store.record(make(id="abc123"))
    with pytest.raises(StoreError, match="source 'web'"):
        store.record(make(source="web"))
    ids = store.record_many([make(i, group_id="grp", choice_index=i) for i in range(3)])
    assert [store.get(i).choice_index for i in ids] == [0, 1, 2]


def test_list_is_newest_first_and_filters(store):
    for n, (spec, source) in enumerate([("general", "run"), ("coding", "serve"), ("coding", "chat"), ("general", "serve")]):
        store.record(make(n, specialist=spec, source=source, created=T0 + timedelta(minutes=n)))
    assert [i.prompt for i in store.list()] == ["question 3", "question 2", "question 1", "question 0"]
    assert [i.prompt for i in store.list(limit=2)] == ["question 3", "question 2"]
    assert [i.prompt for i in store.list(specialist="coding")] == ["question 2", "question 1"]
    assert [i.prompt for i in store.list(source="serve")] == ["question 3", "question 1"]
    assert [i.prompt for i in store.list(specialist="coding", source="chat")] == ["question 2"]
    assert [i.prompt for i in store.list(since=T0 + timedelta(minutes=2))] == ["question 3", "question 2"]


def test_find_takes_a_unique_prefix(store):
    a = store.record(make(id="aaaa1111"))
    store.record(make(id="aaaa2222"))
    assert store.find("aaaa1").id == a and store.find(a).id == a
    with pytest.raises(UnknownInteraction, match="several"):
        store.find("aaaa")
    with pytest.raises(UnknownInteraction, match="no interaction"):
        store.find("ffff")
    with pytest.raises(UnknownInteraction, match="hex"):
        store.find("%")


def test_export_writes_jsonl_oldest_first_since_a_time(store, tmp_path):
    for n in range(4):
        store.record(make(n, created=T0 + timedelta(hours=n)))
    stream = io.StringIO()
    assert store.export(stream) == 4
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [x["answer"] for x in lines] == ["answer 0", "answer 1", "answer 2", "answer 3"]
    assert lines[0]["created"] == T0.isoformat() and lines[0]["messages"][1]["content"] == "question 0"
    path = tmp_path / "out.jsonl"
    assert store.export(path, since=T0 + timedelta(hours=2)) == 2
    assert [json.loads(x)["answer"] for x in path.read_text().splitlines()] == ["answer 2", "answer 3"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temporary file left


def test_stats_count_tokens_latency_and_cost(store):
    # latencies 1..10 s, machine 0.5..9.5 s: p50 = 5 s, p95 = 10 s (nearest rank)
    for n in range(10):
        store.record(make(n, specialist="coding" if n < 4 else "general", adapter="v0001" if n < 2 else None,
                          source="serve" if n % 2 else "run", ttft_s=0.1 * (n + 1)))
    pricing = Pricing(machine_per_hour=3.6, compare={"api-model": (1.0, 2.0), "unpriced": None})
    s = store.stats(pricing=pricing)
    assert s["interactions"] == 10 and s["by_source"] == {"run": 5, "serve": 5}
    assert s["tokens_in"] == sum(10 + n for n in range(10)) == 145 and s["tokens_out"] == 245
    assert s["machine_seconds"] == pytest.approx(50.0)
    assert s["latency_s"]["p50"] == 5.0 and s["latency_s"]["p95"] == 10.0 and s["latency_s"]["mean"] == pytest.approx(5.5)
    assert s["ttft_s"]["p50"] == pytest.approx(0.5) and s["ttft_s"]["p95"] == pytest.approx(1.0)
    assert s["tokens_per_machine_second"] == pytest.approx(245 / 50)
    by_spec = {r["specialist"]: r for r in s["by_specialist"]}
    assert by_spec["coding"]["interactions"] == 4 and by_spec["coding"]["tokens_out"] == 20 + 21 + 22 + 23
    assert by_spec["coding"]["aeth_usd"] == pytest.approx((0.5 + 1.5 + 2.5 + 3.5) * 3.6 / 3600)
    by_adapter = {(r["specialist"], r["adapter"]): r["interactions"] for r in s["by_adapter"]}
    assert by_adapter == {("coding", "v0001"): 2, ("coding", None): 2, ("general", None): 6}
    cost = s["cost"]
    assert cost["aeth_usd"] == pytest.approx(50 * 3.6 / 3600) == pytest.approx(0.05)
    assert cost["aeth_usd_per_mtok"] == pytest.approx(0.05 / 390 * 1e6)
    api, unpriced = cost["compare"]
    assert api["usd"] == pytest.approx((145 * 1.0 + 245 * 2.0) / 1e6)
    assert api["ratio"] == pytest.approx(api["usd"] / 0.05) and api["saved_usd"] == pytest.approx(api["usd"] - 0.05)
    assert unpriced["usd"] is None and "prices.yaml" in unpriced["note"]
    only = store.stats(specialist="coding", source="serve", pricing=pricing)
    assert only["interactions"] == 2 and only["tokens_in"] == 11 + 13


def test_stats_of_nothing(store):
    s = store.stats()
    assert s["interactions"] == 0 and s["latency_s"]["p50"] is None and s["cost"]["aeth_usd"] == 0
    assert all(row["ratio"] is None for row in s["cost"]["compare"])


def test_keys_create_verify_revoke(store):
    assert not store.has_keys()
    key, secret = store.create_key("app", rpm=60, tpm=1000, specialists="coding, writing")
    assert isinstance(key, ApiKey) and secret.startswith("aeth-") and len(secret) >= 45
    assert key.prefix == secret[:9] and key.specialists == ["coding", "writing"] and key.allows("coding")
    assert not key.allows("general")
    assert store.has_keys()
    found = store.verify_key(secret)
    assert found.id == key.id and (found.rpm, found.tpm) == (60, 1000) and found.last_used is not None
    assert store.verify_key(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.verify_key("") is None and store.verify_key(None) is None
    with pytest.raises(KeyNameTaken, match="already called 'app'"):
        store.create_key("app")
    other, other_secret = store.create_key("batch")
    assert [k.name for k in store.keys()] == ["app", "batch"]
    assert store.revoke_key("app").revoked is not None
    assert store.verify_key(secret) is None and store.verify_key(other_secret).name == "batch"
    with pytest.raises(UnknownKey, match="already revoked"):
        store.revoke_key("app")
    with pytest.raises(UnknownKey, match="no key"):
        store.revoke_key("nobody")
    again, _ = store.create_key("app")  # a revoked key's name is free again
    assert [k.name for k in store.keys()] == ["batch", "app"] and again.id != key.id
    assert [k.name for k in store.keys(include_revoked=True)] == ["app", "batch", "app"]
    store.revoke_key(other.id)  # by id
    store.revoke_key("app")
    assert not store.has_keys()
    with pytest.raises(StoreError, match="positive"):
        store.create_key("bad", rpm=0)


def test_a_secret_is_never_written_anywhere(tmp_path):
    home = tmp_path / "home"
    store = Store.open(None, home)
    secrets = [store.create_key(f"k{i}")[1] for i in range(3)]
    store.verify_key(secrets[0])
    store.revoke_key("k1")

    def raw():
        return b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith("aeth.db"))

    for state in ("open", "closed"):  # before and after the WAL is checkpointed into the database file
        data = raw()
        assert b"api_keys" in data and b"k2" in data, state  # the rows are there...
        for secret in secrets:  # ...but neither the secret nor its part after the displayed prefix
            assert secret.encode() not in data and secret[9:].encode() not in data and secret[12:30].encode() not in data
        store.close()


def test_a_secret_is_not_in_postgresql_either(postgres_db):
    from sqlalchemy import text

    store = Store.open(postgres_db)
    key, secret = store.create_key("app")
    with store.engine.connect() as conn:
        dumped = " ".join(str(r) for r in conn.execute(text("SELECT row_to_json(k)::text FROM api_keys k")).scalars())
    store.close()
    assert key.id in dumped and secret[9:] not in dumped and secret not in dumped


def test_feedback_is_idempotent_by_id_and_needs_a_known_interaction(store):
    iid = store.record(make())
    fid = store.record_feedback(iid, "thumbs", True, feedback_id="client-1")
    assert fid == "client-1"
    assert store.record_feedback(iid, "thumbs", True, feedback_id="client-1") == "client-1"  # a retry
    second = store.record_feedback(iid, "correction", "a better answer", comment="too long", source="verifier")
    assert second != fid and len(second) == 24
    rows = store.feedback(iid)
    assert [(f.id, f.kind, f.value, f.source) for f in rows] == [("client-1", "thumbs", True, "user"),
                                                                 (second, "correction", "a better answer", "verifier")]
    assert rows[1].comment == "too long"
    with pytest.raises(UnknownInteraction, match="no interaction 'nope'"):
        store.record_feedback("nope", "thumbs", False)
    with pytest.raises(UnknownInteraction):
        store.record_feedback("nope", "thumbs", False, feedback_id="client-2")
    other = store.record(make(1))
    with pytest.raises(StoreError, match="already used"):
        store.record_feedback(other, "thumbs", True, feedback_id="client-1")
    for kind, value, message in [("stars", 1, "kind 'stars'"), ("thumbs", 1, "true"), ("rating", "5", "number"),
                                 ("correction", " ", "non-empty")]:
        with pytest.raises(StoreError, match=message):
            store.record_feedback(iid, kind, value)
    assert len(store.feedback()) == 2


def test_threads_share_one_store(store):
    ids, errors = [], []

    def work(t):
        try:
            for n in range(15):
                ids.append(store.record(make(n, metadata={"thread": t})))
                store.list(limit=3)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 90 and store.stats()["interactions"] == 90


# ---- opening, migrations ---------------------------------------------------------------------------


def test_reopening_keeps_rows_and_the_database_is_at_head(db):
    from aeth.store.migrate import current, head

    first = Store.open(*db)
    iid = first.record(make())
    first.close()
    again = Store.open(*db)
    assert again.get(iid).answer == "answer 0"
    assert current(again.engine) == head() == HEAD
    again.close()


def test_head_is_alembics_head():
    from aeth.store.migrate import head

    assert head() == HEAD


def test_the_migrations_build_exactly_the_schema_the_code_uses(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from aeth.store.schema import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


MIGRATION_0002 = '''
"""A test-only migration: a column with a default.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("note", sa.String(40), nullable=False, server_default="none"))


def downgrade():
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("note")
'''


def test_a_new_migration_keeps_the_data_both_ways(db, tmp_path):
    """An upgrade as a new aeth would ship it: the rows stay, the column appears; and back again."""
    from sqlalchemy import inspect, text

    from aeth.store import migrate

    store = Store.open(*db)
    ids = [store.record(make(n)) for n in range(3)]
    key, secret = store.create_key("app")
    scripts = tmp_path / "migrations"
    shutil.copytree(Path(migrate.__file__).parent / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0002_note.py").write_text(MIGRATION_0002)

    migrate.upgrade(store.engine, script_location=str(scripts))
    assert migrate.current(store.engine) == "0002"
    with store.engine.connect() as conn:
        assert set(conn.execute(text("SELECT note FROM interactions")).scalars()) == {"none"}
        assert "note" in {c["name"] for c in inspect(conn).get_columns("interactions")}
    assert [store.get(i).answer for i in ids] == ["answer 0", "answer 1", "answer 2"]
    assert store.verify_key(secret).id == key.id

    migrate.downgrade(store.engine, "0001", script_location=str(scripts))
    assert migrate.current(store.engine) == "0001"
    with store.engine.connect() as conn:
        assert "note" not in {c["name"] for c in inspect(conn).get_columns("interactions")}
    assert [store.get(i).answer for i in ids] == ["answer 0", "answer 1", "answer 2"]
    store.close()


OPEN_AT_ONCE = textwrap.dedent("""
    import sys
    import alembic.command, sqlalchemy  # imported before the start line, so the processes race in open()
    from aeth.store import Store
    from aeth.store.migrate import current
    url, home = sys.argv[1] or None, sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()
    store = Store.open(url, home)
    store.record_many([])
    print("opened", current(store.engine), flush=True)
""")


def test_processes_opening_a_fresh_database_at_once_all_succeed(db):
    url, home = db
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, url or "", str(home)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:  # all at once: each is waiting on this line
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == f"opened {HEAD}"
    store = Store.open(url, home)
    assert store.stats()["interactions"] == 0
    store.close()


RECORD_FOREVER = textwrap.dedent("""
    import sys, threading
    from aeth.store import Interaction, Store
    store = Store.open(sys.argv[1] or None, sys.argv[2])
    lock = threading.Lock()

    def work(t):
        n = 0
        while True:
            iid = store.record(Interaction(messages=[{"role": "user", "content": f"{t}-{n}"}], answer="x" * 500,
                                           specialist="general", source="serve", machine_seconds=0.01))
            with lock:  # printed only once record() returned: what a server acknowledges
                print(iid, flush=True)
            n += 1

    for t in range(3):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
""")


def test_every_acknowledged_row_survives_a_sigkill(db):
    url, home = db
    child = subprocess.Popen([sys.executable, "-c", RECORD_FOREVER, url or "", str(home)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        for line in child.stdout:
            acknowledged.append(line.strip())
            if len(acknowledged) == 120:
                os.kill(child.pid, signal.SIGKILL)  # mid-stream: its threads are writing as it dies
                break
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
    assert len(acknowledged) == 120, child.stderr.read()
    assert child.returncode == -signal.SIGKILL
    store = Store.open(url, home)
    missing = [i for i in acknowledged if store.get(i) is None]
    total = store.stats()["interactions"]
    store.close()
    assert missing == [] and total >= 120


# ---- connections and errors ------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_full_sync_and_a_busy_timeout(tmp_path):
    store = Store.open(None, tmp_path)
    assert store.dialect == "sqlite" and (tmp_path / "aeth.db").exists()
    with store.engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    store.close()
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 30000, "foreign_keys": 1}


def test_a_sqlite_url_works_too(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    store.record(make())
    store.close()
    assert (tmp_path / "sub" / "x.db").exists()


@pytest.mark.parametrize("url, message", [
    ("mysql://u:secret@host/db", "'mysql' databases are not supported"),
    ("postgresql+psycopg2://h/db", "driver 'psycopg2' is not supported"),
    ("sqlite:///", "needs a file path"),
    ("not a url", "must be unset"),
])
def test_a_bad_url_names_store_url_and_the_accepted_forms(url, message, tmp_path):
    with pytest.raises(StoreError, match="store.url") as e:
        Store.open(url, tmp_path)
    assert message in str(e.value) and "secret" not in str(e.value)


def test_an_unreachable_postgresql_says_so(tmp_path):
    from aeth.testing import _free_port

    port = _free_port()  # nothing listens there
    with pytest.raises(StoreUnavailable, match=f"cannot reach PostgreSQL at postgresql\\+psycopg://aeth:\\*\\*\\*@127.0.0.1:{port}/x"):
        Store.open(f"postgresql://aeth:pw@127.0.0.1:{port}/x", tmp_path)


def test_importing_the_store_does_not_import_sqlalchemy():
    probe = "import sys, aeth.store, aeth.store.cost, aeth.config; print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_pricing_from_config_reads_the_price_table(aeth_home):
    from aeth.config import load_config

    (aeth_home / "prices.yaml").write_text("house-model: {input: 1.5, output: 3}\n")
    pricing = Pricing.from_config(load_config(["cost.machine_per_hour=0.5", "cost.compare=house-model, gpt-4o, nope"]))
    assert pricing.machine_per_hour == 0.5
    assert pricing.compare == {"house-model": (1.5, 3.0), "gpt-4o": (2.5, 10.0), "nope": None}
    assert pricing.aeth_usd(7200) == pytest.approx(1.0)
    assert Pricing.from_config(load_config()).compare == {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00)}


# ---- the application's store ------------------------------------------------------------------------


def test_the_app_opens_its_store_once_and_log_interaction_obeys_the_config(aeth_home):
    from aeth.app import Aeth
    from aeth.config import load_config

    app = Aeth(load_config())
    assert app.store is app.store
    iid = app.log_interaction(make())
    assert app.store.get(iid).answer == "answer 0"
    app.close()
    off = Aeth(load_config(["store.log_interactions=false"]))
    assert off.log_interaction(make()) is None
    off.close()
    assert Store.open(None, aeth_home).stats()["interactions"] == 1


def test_a_database_that_fails_only_warns(aeth_home):
    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.plugins import AethWarning
    from aeth.testing import _free_port

    app = Aeth(load_config([f"store.url=postgresql+psycopg://aeth@127.0.0.1:{_free_port()}/x"]))
    with pytest.warns(AethWarning, match="the answer was not logged: cannot reach PostgreSQL"):
        assert app.log_interaction(make()) is None
    app.close()


def test_the_store_and_cost_keys_are_configuration(aeth_home):
    from aeth.config import load_config
    from aeth.errors import ConfigError

    cfg = load_config(env={"AETH_COST_COMPARE": "gpt-4o, claude-sonnet-4-0", "AETH_STORE_LOG_INTERACTIONS": "false",
                           "AETH_STORE_URL": "postgresql://aeth@db:5432/aeth"})
    assert cfg["cost.compare"] == ["gpt-4o", "claude-sonnet-4-0"] and cfg["store.log_interactions"] is False
    assert cfg["store.url"] == "postgresql://aeth@db:5432/aeth"
    defaults = load_config(env={})
    assert (defaults["store.url"], defaults["store.log_interactions"], defaults["cost.machine_per_hour"]) == (None, True, 0.10)
    with pytest.raises(ConfigError) as e:
        load_config(["store.url=mysql://h/db", "cost.compare=", "cost.machine_per_hour=-1"], env={})
    assert len(e.value.problems) == 3
    assert "store.url must be unset (SQLite at $AETH_HOME/aeth.db), sqlite:///PATH" in str(e.value)
