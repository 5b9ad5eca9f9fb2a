"""Conversations: the KV cache of a chat persists between turns and is fed only new text; the
transcript is saved as it goes and resumes by id; `aeth chat` drives both (stdin and Ctrl-C)."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aeth.chat import ChatMemory, Conversation, ConversationError, _increment, _render
from aeth.request import Sampling

AETH = str(Path(sys.executable).with_name("aeth"))


def sampling(seed, max_tokens=6, temperature=1.0):
    return Sampling(temperature=temperature, top_p=1.0, top_k=0, max_tokens=max_tokens, repetition_penalty=1.0, seed=seed)


@pytest.fixture
def tiny(tiny_model_dir):
    from aeth.models.loading import load_model

    return load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")


@pytest.fixture
def recorded(tiny):
    """Every input id the tiny model is fed, in order."""
    ids = []
    handle = tiny.model.register_forward_pre_hook(lambda m, a, k: ids.extend(k["input_ids"][0].tolist()), with_kwargs=True)
    yield ids
    handle.remove()


@pytest.mark.parametrize("system", [True, False])
@pytest.mark.parametrize("reply", ["Four.", ""])
def test_the_increment_continues_the_rendered_conversation(tiny, system, reply):
    tok = tiny.tokenizer
    messages = [{"role": "system", "content": "Be brief."}] if system else []
    messages += [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                 {"role": "user", "content": "Two plus two?"}, {"role": "assistant", "content": reply},
                 {"role": "user", "content": "And three?"}]
    fed = len(messages) - 1
    opened = _render(tok, messages[:fed - 1], True)
    assert opened + reply + _increment(tok, messages, fed) == _render(tok, messages, True)
    assert _increment(tok, messages, fed - 1) is None  # the cache must end in a reply


def test_each_turn_feeds_only_its_new_text_and_the_cache_holds_the_whole_transcript(tiny, recorded):
    """What the cache has been fed, decoded, is exactly the chat template's rendering of the
    conversation with each reply as generated: nothing lost, nothing fed twice, and a turn costs
    its own text only."""
    memory, messages, raw = ChatMemory(), [{"role": "system", "content": "Be brief."}], None
    raw = list(messages)
    tok = tiny.tokenizer
    costs = []
    for i, question in enumerate(["hi there", "what is two plus two?", "and three?", "ok", "thanks, bye"]):
        messages.append({"role": "user", "content": question})
        raw.append(messages[-1])
        stats = {}
        text = "".join(memory.stream(tiny, "general", messages, sampling(i), stats))
        everything = recorded + stats["unfed"]
        generated = everything[len(everything) - stats["tokens_out"]:]
        reply = tok.decode(generated, skip_special_tokens=False)
        assert tok.decode(everything, skip_special_tokens=False) == _render(tok, raw, True) + reply
        messages.append({"role": "assistant", "content": text.strip()})
        raw.append({"role": "assistant", "content": reply})
        costs.append(stats["tokens_in"])
        assert stats["cache_tokens"] == len(recorded) and stats["tokens_seen"] == len(recorded)
    assert costs[0] > max(costs[1:]) and max(costs[1:]) <= len(tok(question)["input_ids"]) + 16


def test_a_long_chat_rolls_at_constant_memory(tiny, aeth_home):
    from aeth.generation.decode import default_cache

    memory, messages = ChatMemory(), [{"role": "system", "content": "Be brief."}]
    sizes = []
    for i in range(40):
        messages.append({"role": "user", "content": f"Tell me about the number {i}."})
        stats = {}
        text = "".join(memory.stream(tiny, "general", messages, sampling(i, max_tokens=8), stats,
                                     new_cache=lambda model: default_cache(model, sinks=4, window=60)))
        messages.append({"role": "assistant", "content": text.strip()})
        assert stats["cache_tokens"] <= 64 and stats["cache_capacity"] == 64
        sizes.append(stats["cache_bytes"])
    assert stats["tokens_seen"] > 600 and len(set(sizes[10:])) == 1


def test_a_cancelled_reply_keeps_the_cache_and_the_next_turn_continues_it(tiny, recorded):
    memory, tok = ChatMemory(), tiny.tokenizer
    messages = [{"role": "user", "content": "Count to ten."}]
    stats, pieces = {}, []
    stream = memory.stream(tiny, "k", messages, sampling(0, max_tokens=50, temperature=0), stats,
                           cancel=lambda: stats.get("tokens_out", 0) >= 3)
    pieces = list(stream)
    assert stats["finish_reason"] == "cancelled" and stats["tokens_out"] == 3 and len(stats["unfed"]) == 1
    reply_ids = (recorded + stats["unfed"])[-3:]
    messages += [{"role": "assistant", "content": "".join(pieces).strip()}, {"role": "user", "content": "Go on."}]
    "".join(memory.stream(tiny, "k", messages, sampling(1), stats))
    raw = [messages[0], {"role": "assistant", "content": tok.decode(reply_ids, skip_special_tokens=False)}, messages[2]]
    assert tok.decode(recorded[:len(recorded) - stats["tokens_out"] + 1], skip_special_tokens=False) == _render(tok, raw, True)


def test_a_forward_cut_short_drops_the_cache_and_the_next_turn_rebuilds_it(tiny):
    memory = ChatMemory()
    messages = [{"role": "user", "content": "Hello"}]
    "".join(memory.stream(tiny, "k", messages, sampling(0), {}))
    messages += [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again"}]
    layer = tiny.model.model.layers[1]
    handle = layer.register_forward_pre_hook(lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        "".join(memory.stream(tiny, "k", messages, sampling(1), {}))
    handle.remove()
    assert "k" not in memory.lanes  # layer 0 took the new tokens, layer 1 did not: unusable
    stats = {}
    "".join(memory.stream(tiny, "k", messages, sampling(1), stats))
    assert stats["cache_tokens"] == stats["tokens_in"] + stats["tokens_out"] - len(stats["unfed"])
    assert stats["tokens_in"] > 12  # rebuilt from the whole (short) conversation, not one increment


def test_lanes_are_kept_per_model_and_the_oldest_goes(tiny):
    memory = ChatMemory(lanes=2)
    messages = [{"role": "user", "content": "Hi"}]
    for key in ("a", "b", "c"):
        "".join(memory.stream(tiny, key, messages, sampling(0), {}))
    assert list(memory.lanes) == ["b", "c"] and memory.last == "c"


def test_conversations_save_each_message_and_resume(aeth_home):
    convo = Conversation.new(aeth_home)
    convo.add("user", "Hi")
    convo.add("assistant", "Hello!", specialist="general")
    convo.pin("coding")
    convo.add("user", "a question a crash left unanswered")
    again = Conversation.load(aeth_home, convo.id[:-2])
    assert again.messages == convo.messages and again.specialist == "coding"
    assert again.history() == ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"})
    assert again.turns == 1 and "**aeth (general)**" in again.markdown()
    with open(convo.path, "a") as f:
        f.write('{"role": "user", "content": "cut sh')  # a write a crash cut short
    assert Conversation.load(aeth_home, "last").messages == convo.messages


def test_unknown_ambiguous_and_damaged_conversations_are_named(aeth_home):
    with pytest.raises(ConversationError, match="no saved conversations"):
        Conversation.load(aeth_home, "last")
    a, b = Conversation.new(aeth_home), Conversation.new(aeth_home)
    with pytest.raises(ConversationError, match=r"no conversation 'zzz'; recent ones: .*" + b.id[:8]):
        Conversation.load(aeth_home, "zzz")
    with pytest.raises(ConversationError, match="matches 2 conversations"):
        Conversation.load(aeth_home, a.id[:4])
    a.path.write_text('{"aeth_chat": 1, "id": "x"}\nnot json\n{"role": "user", "content": "hi"}\n')
    with pytest.raises(ConversationError, match="line 2 is not JSON"):
        Conversation.load(aeth_home, a.id)


# ---- the command, in a subprocess, as a user runs it ------------------------------------------


def chat(aeth_home, tiny_model_dir, *args, **kw):
    env = {**os.environ, "AETH_HOME": str(aeth_home), "OMP_NUM_THREADS": "1", "AETH_LOAD_PLUGINS": ""}  # aeth's own only
    return subprocess.Popen([AETH, "-o", f"model.default={tiny_model_dir}", "-o", "model.threads=1", "chat", *args],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def test_chat_session_with_slash_commands_then_resume(aeth_home, tiny_model_dir, tmp_path):
    script = ["hello", "/stats", "/specialist", "/specialist nosuch", "/specialist general", "how are you?",
              f"/save {tmp_path / 'talk.md'}", "/bogus", "/reset", "a new start", "/exit"]
    out, err = chat(aeth_home, tiny_model_dir, "--max-tokens", "5", "--seed", "0").communicate("\n".join(script) + "\n",
                                                                                              timeout=300)
    assert "4 sinks + 508 window" in out and "tokens held of 512" in out and "process memory:" in out and "1 turns, routed per turn" in out
    assert "unknown specialist 'nosuch'" in err and "general answers from now on" in err
    assert "unknown command /bogus" in err and "new conversation" in err
    first, second = sorted((aeth_home / "chats").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    assert "**You**\n\nhow are you?" in (tmp_path / "talk.md").read_text()
    resumed = Conversation.load(aeth_home, first.stem)
    assert resumed.turns == 2 and resumed.specialist == "general"
    assert Conversation.load(aeth_home, second.stem).turns == 1
    listing = subprocess.run([AETH, "chat", "--list"], env={**os.environ, "AETH_HOME": str(aeth_home)},
                             capture_output=True, text=True, timeout=60).stdout
    assert first.stem in listing and "2 turns  hello" in listing
    out, err = chat(aeth_home, tiny_model_dir, "--resume", first.stem[:-1], "--max-tokens", "3").communicate(
        "one more\n", timeout=300)
    assert f"resumed conversation {first.stem}: 2 turns, general" in err and "you: how are you?" in err
    assert Conversation.load(aeth_home, first.stem).turns == 3


def test_ctrl_c_stops_the_reply_not_the_session(aeth_home, tiny_model_dir):
    proc = chat(aeth_home, tiny_model_dir, "--max-tokens", "100000", "--temperature", "0", "-q",
                start_new_session=True)
    proc.stdin.write("Write forever\n")
    proc.stdin.flush()
    seen, deadline = b"", time.monotonic() + 120
    while len(seen) < 200 and time.monotonic() < deadline:  # the reply is streaming
        if select.select([proc.stdout], [], [], 1.0)[0]:
            seen += os.read(proc.stdout.fileno(), 4096)
    assert len(seen) >= 200, "the tiny model stopped by itself; pick another prompt"
    os.kill(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    time.sleep(1.0)
    proc.stdin.write("/stats\n/exit\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "interrupted" in err and "saved as" in err
    assert "2 turns" not in out and "1 turns" in out  # the session went on to /stats
    record = [json.loads(line) for line in next((aeth_home / "chats").glob("*.jsonl")).read_text().splitlines()][-1]
    assert record["role"] == "assistant" and record["interrupted"] is True and record["content"]


@pytest.mark.parametrize("options", [(), ("--temperature", "1.0", "--top-p", "1.0")])
def test_the_first_turn_of_a_chat_answers_as_aeth_run_does(aeth_home, tiny_model_dir, options):
    """Same prompt, specialist and seed: `aeth chat`'s first reply is `aeth run`'s answer, token
    for token (the specialist's defaults, then sampled at temperature 1, where any difference in
    the prompt, the seed or the sampling would show)."""
    question = "What is the capital of France?"
    settings = ("--specialist", "general", "--seed", "7", "--max-tokens", "12", *options)
    env = {**os.environ, "AETH_HOME": str(aeth_home), "OMP_NUM_THREADS": "1", "AETH_LOAD_PLUGINS": ""}
    ran = subprocess.run([AETH, "-o", f"model.default={tiny_model_dir}", "-o", "model.threads=1", "run", "--quiet",
                          *settings, question], env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    out, err = chat(aeth_home, tiny_model_dir, "--quiet", *settings).communicate(question + "\n/exit\n", timeout=300)
    answer = ran.stdout.strip()
    assert answer and out.split("\n")[0].strip() == answer, (out, err)  # split("\n"): tiny-model text may hold \x0c
