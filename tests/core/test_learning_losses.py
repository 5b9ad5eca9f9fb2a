"""aeth's DPO and KTO losses equal trl 1.16's on the same batch and weights, and preference records
become the token sequences trl would build.

trl keeps its losses inside ``DPOTrainer`` / ``KTOTrainer``; the tests build each trainer on the
tiny models (float32, no gradient checkpointing, on the CPU), let trl tokenize and collate a
batch, and call its own ``compute_loss`` on it. aeth scores the same examples (token ids compared
first) with the same policy and reference weights through its objectives: loss, gradients,
rewards and KTO's KL reference point must agree within 1e-5.
"""

from dataclasses import replace

import pytest
import torch

from aeth.learning import reference
from aeth.learning.losses import dpo_loss, kto_kl, kto_loss, sequence_logps
from aeth.learning.objectives import DPOObjective, KTOObjective
from aeth.learning.preferences import PreferenceRecordError, encode_kto, encode_pairs, groups
from aeth.testing import build_lora, build_tiny_model
from aeth.training.data import IGNORE
from aeth.training.distributed import Dist
from aeth.training.plan import TrainPlan

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

SYSTEM = "Be brief."
PAIRS = [(1, 2), (3, 4), (5, 6), (7, 1), (2, 2), (4, 3), (6, 5), (8, 8)]


def user(a, b):
    return {"role": "user", "content": f"What is {a} plus {b}?"}


def answer(text):
    return {"role": "assistant", "content": text}


DPO_RECORDS = [{"messages": [user(a, b), answer(f"{a} plus {b} is {a + b}.")], "rejected": f"It is {a * b + 1}, I think."}
               for a, b in PAIRS[:4]]
# mixed labels in each chunk of four, so both KTO branches and the KL term are exercised
KTO_RECORDS = [{"messages": [user(a, b), answer(f"{a} plus {b} is {a + b + i % 3}.")], "label": i % 3 == 0}
               for i, (a, b) in enumerate(PAIRS)]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    """A second tiny model (other random weights, same tokenizer): the policy, against the reference tiny_model_dir."""
    return build_tiny_model(tmp_path_factory.mktemp("policy"), seed=1)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def causal_lm(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def trl_args(config_class, tmp_path, **more):
    return config_class(output_dir=str(tmp_path / "trl"), bf16=False, gradient_checkpointing=False, use_cpu=True,
                        report_to="none", per_device_train_batch_size=4, max_length=None, beta=0.1, **more)


def conversation(record):
    """trl's conversational format of an aeth record: the system prompt aeth puts first, made explicit."""
    return [{"role": "system", "content": SYSTEM}, *record["messages"][:-1]]


def with_references(items, model, tokenizer):
    scored = reference.score(model, items, tokenizer.pad_token_id, 4, "active", sparse=True)
    return [item.with_reference(*values) for item, values in zip(items, scored, strict=True)]


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def max_difference(a, b):
    assert a.keys() == b.keys() and a
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_dpo_loss_rewards_and_gradients_equal_trl(tiny_model_dir, policy_dir, tokenizer, tmp_path):
    from trl import DPOConfig, DPOTrainer

    dataset = datasets.Dataset.from_list([{"prompt": conversation(r), "chosen": [r["messages"][-1]],
                                           "rejected": [answer(r["rejected"])]} for r in DPO_RECORDS])
    trainer = DPOTrainer(model=causal_lm(policy_dir), ref_model=causal_lm(tiny_model_dir), args=trl_args(DPOConfig, tmp_path),
                         train_dataset=dataset, processing_class=tokenizer)
    rows = [trainer.train_dataset[i] for i in range(len(DPO_RECORDS))]
    pairs = encode_pairs(tokenizer, DPO_RECORDS, SYSTEM, seq_len=512)
    for row, pair in zip(rows, pairs, strict=True):  # the same tokens, or the comparison means nothing
        assert pair.chosen.input_ids == tuple(row["prompt_ids"] + row["chosen_ids"])
        assert pair.rejected.input_ids == tuple(row["prompt_ids"] + row["rejected_ids"])
        assert pair.chosen.trained_tokens == len(row["chosen_ids"]) and pair.rejected.trained_tokens == len(row["rejected_ids"])
    trl_loss = trainer.compute_loss(trainer.model, trainer.data_collator(rows))
    trl_loss.backward()
    metrics = {k: v[-1] for k, v in trainer._metrics["train" if trainer.model.training else "eval"].items()}

    policy, ref = causal_lm(policy_dir), causal_lm(tiny_model_dir)
    pad = tokenizer.pad_token_id
    pairs = with_references(pairs, ref, tokenizer)
    objective = DPOObjective(TrainPlan(base_model="tiny", beta=0.1, objective="dpo"), pad, True, Dist())
    loss = objective.loss(policy, pairs, len(pairs))
    loss.backward()
    with torch.no_grad():
        _, chosen, rejected = dpo_loss(sequence_logps(policy, [p.chosen for p in pairs], pad),
                                       sequence_logps(policy, [p.rejected for p in pairs], pad),
                                       torch.tensor([p.ref_chosen for p in pairs]), torch.tensor([p.ref_rejected for p in pairs]), 0.1)
    differences = {"loss": abs(loss.item() - trl_loss.item()),
                   "gradients": max_difference(grads(policy), grads(trainer.model)),
                   "rewards/chosen": abs(chosen.mean().item() - metrics["rewards/chosen"]),
                   "rewards/rejected": abs(rejected.mean().item() - metrics["rewards/rejected"]),
                   "rewards/margins": abs((chosen - rejected).mean().item() - metrics["rewards/margins"])}
    print("DPO: max |aeth - trl|", differences)
    assert abs(trl_loss.item() - 0.6931) > 1e-3  # policy and reference differ: not the trivial log 2
    assert all(d <= 1e-5 for d in differences.values()), differences


def test_kto_loss_kl_and_gradients_equal_trl_chunk_by_chunk(tiny_model_dir, policy_dir, tokenizer, tmp_path):
    from trl import KTOConfig, KTOTrainer

    dataset = datasets.Dataset.from_list([{"prompt": conversation(r), "completion": [r["messages"][-1]], "label": r["label"]}
                                          for r in KTO_RECORDS])
    trainer = KTOTrainer(model=causal_lm(policy_dir), ref_model=causal_lm(tiny_model_dir),
                         args=trl_args(KTOConfig, tmp_path, desirable_weight=1.0, undesirable_weight=1.5),
                         train_dataset=dataset, processing_class=tokenizer)
    rows = [trainer.train_dataset[i] for i in range(len(KTO_RECORDS))]
    examples = encode_kto(tokenizer, KTO_RECORDS, SYSTEM, seq_len=512, chunk=4)
    for row, example in zip(rows, examples, strict=True):  # trl's KL completions: rotated within chunks of 4
        assert example.example.input_ids == tuple(row["prompt_ids"] + row["completion_ids"])
        assert example.kl.input_ids == tuple(row["prompt_ids"] + row["KL_completion_ids"])
        assert example.desirable == row["label"]
    assert groups(examples) == [[0, 1, 2, 3], [4, 5, 6, 7]]

    policy, ref = causal_lm(policy_dir), causal_lm(tiny_model_dir)
    pad = tokenizer.pad_token_id
    examples = with_references(examples, ref, tokenizer)
    plan = TrainPlan(base_model="tiny", beta=0.1, objective="kto", desirable_weight=1.0, undesirable_weight=1.5)
    objective = KTOObjective(plan, pad, True, Dist())
    differences, kls = {"loss": 0.0, "kl": 0.0, "gradients": 0.0}, []
    mode = "train" if trainer.model.training else "eval"
    for start in (0, 4):
        trainer.model.zero_grad()
        policy.zero_grad()
        trl_loss = trainer.compute_loss(trainer.model, trainer.data_collator(rows[start:start + 4]))
        trl_loss.backward()
        chunk = examples[start:start + 4]
        loss = objective.loss(policy, chunk, len(chunk))
        loss.backward()
        with torch.no_grad():
            kl = kto_kl(sequence_logps(policy, [e.kl for e in chunk], pad), torch.tensor([e.ref_kl for e in chunk]))
        kls.append(kl.item())
        differences["loss"] = max(differences["loss"], abs(loss.item() - trl_loss.item()))
        differences["kl"] = max(differences["kl"], abs(kl.item() - trainer._metrics[mode]["kl"][-1]))
        differences["gradients"] = max(differences["gradients"], max_difference(grads(policy), grads(trainer.model)))
    print("KTO: max |aeth - trl|", differences, "KL per chunk", kls)
    assert max(kls) > 0  # the reference point is not the clamped 0 in every chunk
    assert differences["loss"] <= 1e-5 and differences["gradients"] <= 1e-5, differences
    # the KL is a difference of log-probabilities near -66, whose float32 spacing is 7.6e-6: summed in
    # another order (trl's fused head, other padding) it moves by a few of those (measured 8.6e-6)
    assert differences["kl"] <= 5e-5, differences


def test_kto_loss_weighs_desirable_and_undesirable_answers():
    logps, ref = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0])
    losses, rewards = kto_loss(logps, ref, [True, False], torch.tensor(0.0), beta=0.5, desirable_weight=2.0,
                               undesirable_weight=3.0)
    sigmoid = torch.sigmoid(torch.tensor(0.5))
    torch.testing.assert_close(losses, torch.stack([2.0 * (1 - sigmoid), 3.0 * (1 - sigmoid)]))
    torch.testing.assert_close(rewards, torch.tensor([0.5, -0.5]))
    assert kto_kl(torch.tensor([-5.0, -6.0]), torch.tensor([-4.0, -4.0])).item() == 0.0  # clamped at 0


def test_sequence_logps_with_and_without_sparse_logits_agree(tiny_model_dir, tokenizer):
    model = causal_lm(tiny_model_dir)
    pairs = encode_pairs(tokenizer, DPO_RECORDS, SYSTEM)
    examples = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    with torch.no_grad():
        sparse = sequence_logps(model, examples, tokenizer.pad_token_id, sparse=True)
        full = sequence_logps(model, examples, tokenizer.pad_token_id, sparse=False)
        logits = model(input_ids=torch.tensor([examples[0].input_ids])).logits.float()
    torch.testing.assert_close(sparse, full, atol=1e-5, rtol=0)
    # by hand: the sum of log p(token t+1 | ..t) over the answer tokens of the first example
    labels = torch.tensor(examples[0].labels[1:])
    logp = torch.log_softmax(logits[0, :-1], dim=-1)
    learned = labels != IGNORE
    by_hand = logp[learned.nonzero().flatten(), labels[learned]].sum()
    assert sparse[0].item() == pytest.approx(by_hand.item(), abs=1e-5) and sparse[0].item() < 0


def test_the_reference_is_the_starting_adapter_or_the_bare_base(tiny_model_dir, tokenizer, tmp_path):
    from peft import PeftModel

    adapter = build_lora(tiny_model_dir, tmp_path / "lora")
    model = PeftModel.from_pretrained(causal_lm(tiny_model_dir), str(adapter), is_trainable=True)
    pairs = encode_pairs(tokenizer, DPO_RECORDS, SYSTEM)
    pad = tokenizer.pad_token_id
    active = reference.score(model, pairs, pad, 2, "active", sparse=True)
    base = reference.score(model, pairs, pad, 2, "base", sparse=True)
    assert model.training  # scoring leaves the model as it found it
    with torch.no_grad():
        bare = sequence_logps(causal_lm(tiny_model_dir), [p.chosen for p in pairs], pad)
        adapted = sequence_logps(model.eval(), [p.chosen for p in pairs], pad)
    assert [b[0] for b in base] == pytest.approx(bare.tolist(), abs=1e-5)
    assert [a[0] for a in active] == pytest.approx(adapted.tolist(), abs=1e-5)
    assert max(abs(a[0] - b[0]) for a, b in zip(active, base, strict=True)) > 1e-3  # the adapter matters


def test_a_multi_turn_pair_learns_only_its_last_answer(tokenizer):
    record = {"messages": [user(1, 1), answer("2"), user(2, 2), answer("4")], "rejected": "5"}
    (pair,) = encode_pairs(tokenizer, [record], SYSTEM)
    for example, text in ((pair.chosen, "4"), (pair.rejected, "5")):
        learned = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE]
        assert tokenizer.decode(learned) == f"{text}<|im_end|>\n"  # the earlier answer "2" is context only
    prompt = prompt_of(pair.chosen, tokenizer)
    assert prompt == prompt_of(pair.rejected, tokenizer) and prompt.startswith(f"<|im_start|>system\n{SYSTEM}")
    assert prompt.endswith("<|im_start|>assistant\n") and "<|im_start|>assistant\n2<|im_end|>" in prompt


def prompt_of(example, tokenizer=None):
    """The ids (or, with ``tokenizer``, the text) before the first learned token."""
    start = next(i for i, label in enumerate(example.labels) if label != IGNORE)
    ids = example.input_ids[:start]
    return ids if tokenizer is None else tokenizer.decode(ids)


def test_kto_chunks_rotate_completions_and_unpair_dpo_records(tokenizer):
    records = [{"messages": [user(a, 1), answer(str(a + 1))], "label": a % 2 == 0} for a in range(5)]
    examples = encode_kto(tokenizer, records, chunk=2)
    assert groups(examples) == [[0, 1], [2, 3, 4]]  # the short last chunk joins the one before

    def completion(example):
        return tokenizer.decode([t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE])

    assert [completion(e.kl) for e in examples] == [completion(examples[i].example) for i in (1, 0, 4, 2, 3)]
    assert [e.desirable for e in examples] == [True, False, True, False, True]
    assert all(prompt_of(e.kl) == prompt_of(e.example) for e in examples)  # each keeps its own prompt
    unpaired = encode_kto(tokenizer, [DPO_RECORDS[0], KTO_RECORDS[1]], chunk=4)
    assert [e.desirable for e in unpaired] == [True, KTO_RECORDS[1]["label"], False]  # rejected answers last
    assert completion(unpaired[2].example) == f"{DPO_RECORDS[0]['rejected']}<|im_end|>\n"


def test_records_are_checked_and_prompts_that_fill_seq_len_are_dropped(tokenizer):
    with pytest.raises(PreferenceRecordError, match='needs "rejected"'):
        encode_pairs(tokenizer, [KTO_RECORDS[0]])
    with pytest.raises(PreferenceRecordError, match='"label": true'):
        encode_kto(tokenizer, [{"messages": [user(1, 1), answer("2")]}])
    with pytest.raises(PreferenceRecordError, match="ending in the assistant's answer"):
        encode_pairs(tokenizer, [{"messages": [user(1, 1)], "rejected": "x"}])
    long = replace_content(DPO_RECORDS[0], "word " * 200)
    assert encode_pairs(tokenizer, [long, DPO_RECORDS[1]], seq_len=64) == encode_pairs(tokenizer, [DPO_RECORDS[1]], seq_len=64)
    (cut,) = encode_pairs(tokenizer, [replace_answer(DPO_RECORDS[0], "seven " * 100)], seq_len=64)
    assert len(cut.chosen.input_ids) == 64 and cut.chosen.trained_tokens > 0  # cut from the start, as trl cuts


def replace_content(record, text):
    return {**record, "messages": [{**record["messages"][0], "content": text}, *record["messages"][1:]]}


def replace_answer(record, text):
    return {**record, "messages": [*record["messages"][:-1], answer(text)]}


def test_an_objective_is_what_the_plan_names(tiny_model_dir, tokenizer):
    from aeth.errors import AethError
    from aeth.training.objective import Objective, encode, objective_for

    model = causal_lm(tiny_model_dir)
    plan = TrainPlan(base_model="tiny", seq_len=128, batch_size=2)
    assert isinstance(objective_for(plan, None, None, model, 0, None, 1.0), Objective)
    assert isinstance(objective_for(replace(plan, objective="dpo"), None, None, model, 0, None, 1.0), DPOObjective)
    kto = objective_for(replace(plan, objective="kto"), None, None, model, 0, None, 1.0)
    assert isinstance(kto, KTOObjective) and kto.items(["a", "b"]) == 2
    assert encode(replace(plan, objective="dpo"), tokenizer, DPO_RECORDS, SYSTEM) == encode_pairs(tokenizer, DPO_RECORDS, SYSTEM, 128)
    assert [e.group for e in encode(replace(plan, objective="kto"), tokenizer, KTO_RECORDS)] == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(AethError, match="SFT only"):
        objective_for(replace(plan, objective="dpo", teacher="x"), None, None, model, 0, None, 1.0)
    lone = encode(replace(plan, objective="kto"), tokenizer, KTO_RECORDS[:1])
    with pytest.raises(AethError, match="KTO needs at least 2 training examples"):
        kto.prepare(model, lone, [], None)  # one answer cannot be judged against another's
