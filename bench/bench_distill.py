"""Distillation: plain SFT vs sequence-level KD vs logit KD, on a task with an exact verifier.

Task: addition of two zero-padded D-digit numbers, ``"<|im_start|>347+582="`` -> ``"9290<|im_end|>"``:
the sum's D+1 digits least significant first (the order a causal model can carry in), so every
answer has the same length and exact match is the verifier. Tokenizer: byte-level with no merges
(one token per character) and a compact prefix-stable chat template, shared by every model here.

1. **Teacher**: a Llama (``--teacher-size``) trained from scratch in this benchmark, all weights,
   on a stream of problems (a plain PyTorch loop on aeth's encoding: loss on answer tokens only).
2. **Students**: one smaller Llama (``--student-size``), randomly initialised once; each method starts
   from the same weights and trains through aeth's own loop (:func:`aeth.training.loop.train`): a
   LoRA of rank = hidden size on every projection, the embedding and the output layer (so nearly
   every weight can move), the same N prompts, batch size and number of steps:
   - **SFT**: the gold answers;
   - **seqKD**: the teacher's greedy answers to the same prompts (what ``aeth distill collect``
     would store from a teacher);
   - **logit KD**: the gold answers, the loss ``alpha * KL + (1 - alpha) * CE`` against the
     teacher's distributions at every answer token (``aeth distill train``'s path: a teacher model
     passed to ``train``; top-64 cached after the first pass, ``--kd-cache auto``), at ``--alpha``
     (the run the goals judge) and ``--also-alpha``.
   Every student is trained ``--student-seeds`` times (seed = LoRA initialisation and data order),
   interleaved method by method; accuracies are averaged over seeds, since which of a few hundred
   steps a tiny model "gets" carrying at varies from seed to seed.
3. **Held-out**: M problems in neither the students' prompts nor the teacher's training stream,
   answered greedily by each model; exact-match accuracy.

Gap closed by a KD method = (acc_method - acc_SFT) / (acc_teacher - acc_SFT), on the seed means:
the share of the distance between the plain-SFT student and the teacher that the method recovers
on held-out problems (1.0: as good as the teacher; 0: no better than SFT; negative: worse). Goals
(issue 6): logit KD closes >= 35 % and beats SFT; its wall time (aeth's ``train`` for logit KD,
teacher forwards and cache included, summed over seeds) <= 1.5x SFT's. One thread pinned
(``--threads``) for every side; a run without the cache and one more SFT run are timed last.

    python bench/bench_distill.py [--digits 3] [--prompts 1000] [--steps 1500] [--student-seeds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GOAL_GAP, GOAL_TIME = 0.35, 1.5
#: a compact, prefix-stable chat template: "<|im_start|>347+582=" then "9290<|im_end|>" (14 tokens in all)
TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}<|im_start|>{{ m['content'] }}"
            "{% elif m['role'] == 'assistant' %}{{ m['content'] }}<|im_end|>{% endif %}{% endfor %}")
SIZES = {"xs": (32, 2, 4), "s": (48, 2, 4), "m": (64, 3, 4), "l": (128, 4, 8)}  # hidden, layers, heads


# ---- task ------------------------------------------------------------------------------------------


def problem(a: int, b: int, digits: int) -> dict:
    """One chat record: the prompt and the sum's digits least significant first."""
    answer = str(a + b).zfill(digits + 1)[::-1]
    return {"messages": [{"role": "user", "content": f"{a:0{digits}d}+{b:0{digits}d}="},
                         {"role": "assistant", "content": answer}]}


def answer_of(record: dict) -> str:
    return record["messages"][-1]["content"]


@dataclass
class Data:
    """Disjoint problem sets: the teacher's training stream, the students' prompts, held-out."""

    teacher: list
    prompts: list
    heldout: list


def make_data(digits: int, teacher_n: int, prompts_n: int, heldout_n: int, seed: int) -> Data:
    rng = random.Random(seed)
    top = 10 ** digits
    if teacher_n + prompts_n + heldout_n > top * top:
        raise SystemExit(f"only {top * top} distinct {digits}-digit problems; ask for fewer")
    pairs, seen = [], set()
    while len(pairs) < teacher_n + prompts_n + heldout_n:
        pair = (rng.randrange(top), rng.randrange(top))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    records = [problem(a, b, digits) for a, b in pairs]
    return Data(records[:teacher_n], records[teacher_n:teacher_n + prompts_n], records[teacher_n + prompts_n:])


# ---- models ----------------------------------------------------------------------------------------


def char_tokenizer():
    """One token per byte (no merges), ChatML specials and template: every model here shares it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from aeth.testing import SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train_from_iterator(["0123456789+="], trainers.BpeTrainer(vocab_size=len(alphabet) + len(SPECIAL_TOKENS),
                                                                 special_tokens=list(SPECIAL_TOKENS),
                                                                 initial_alphabet=alphabet, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"],
                                   chat_template=TEMPLATE, model_max_length=128)


def build(directory: Path, size: str, tokenizer, seed: int) -> Path:
    """A randomly initialised Llama of ``size`` saved with ``tokenizer`` (aeth loads it like any model)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, heads = SIZES[size]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 4,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=128, tie_word_embeddings=False, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def load(directory: Path, threads: int):
    import torch

    from aeth.models.loading import load_model

    loaded = load_model(directory, quantization="none", dtype="float32", device="cpu", name=directory.name)
    torch.set_num_threads(threads)
    return loaded


def train_teacher(directory: Path, records: list, args) -> float:
    """Full-weight training from scratch (the teacher's own pretraining; not what is compared)."""
    import torch

    from aeth.training.data import collate, encode_records

    loaded = load(directory, args.threads)
    model, tok = loaded.model, loaded.tokenizer
    examples = encode_records(tok, records, "", 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.teacher_lr, weight_decay=0.0)
    model.train()
    gen = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for step in range(args.teacher_steps):
        lr = args.teacher_lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * (1 - step / args.teacher_steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = collate([examples[i] for i in torch.randint(len(examples), (args.teacher_batch_size,), generator=gen)],
                        tok.pad_token_id)
        loss = model(**batch).loss  # labels are -100 outside answers: their tokens cost nothing
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % max(1, args.teacher_steps // 5) == 0:
            print(f"  teacher step {step + 1}/{args.teacher_steps}: loss {loss.item():.4f}", flush=True)
    model.save_pretrained(directory, safe_serialization=True)
    return time.perf_counter() - started


def greedy(model, tokenizer, records: list, length: int, batch: int = 256) -> list[str]:
    """Each record's prompt answered greedily, ``length`` tokens (every prompt has the same length)."""
    import torch

    prompts = [tokenizer.apply_chat_template(r["messages"][:1], add_generation_prompt=True, tokenize=False)
               for r in records]
    answers = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(prompts), batch):
            ids = torch.tensor([tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[i:i + batch]])
            for _ in range(length):
                nxt = model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
                ids = torch.cat([ids, nxt], dim=1)
            answers += tokenizer.batch_decode(ids[:, -length:])
    return answers


def accuracy(model, tokenizer, records: list, digits: int) -> float:
    got = greedy(model, tokenizer, records, digits + 1)
    return sum(g == answer_of(r) for g, r in zip(got, records, strict=True)) / len(records)


# ---- students through aeth's loop ------------------------------------------------------------------


def student(directory: Path, records: list, args, teacher_dir: Path | None = None, alpha: float = 0.5,
            kd_cache: str = "auto", seed: int = 0):
    """Train a LoRA on the student through aeth's ``train``; returns (trained model, tokenizer, seconds, run dir)."""
    from aeth import AdapterSpec, Specialist
    from aeth.training import TrainPlan
    from aeth.training.loop import train

    hidden = SIZES[args.student_size][0]
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head")
    spec = Specialist(name="adder", description="adds", adapter=AdapterSpec(r=hidden, alpha=hidden, dropout=0.0,
                                                                            target_modules=targets))
    loaded = load(directory, args.threads)
    teacher = load(teacher_dir, args.threads) if teacher_dir else None
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.root))
    plan = TrainPlan(base_model=str(directory), quantization="none", max_steps=args.steps, lr=args.lr,
                     batch_size=args.batch_size, seq_len=64, eval_every=10**9, save_every=10**9, seed=seed,
                     run_dir=run_dir, teacher=str(teacher_dir) if teacher_dir else None, kd_loss=args.kd_loss,
                     kd_alpha=alpha, kd_temperature=args.kd_temperature, kd_cache=kd_cache)
    started = time.perf_counter()
    result = train(spec, plan, records, [], loaded, store=None, progress=False, teacher=teacher)
    seconds = time.perf_counter() - started
    return result.model, loaded.tokenizer, seconds, run_dir


def topk_error(student_dir: Path, teacher_dir: Path, records: list, args) -> tuple[float, float]:
    """Relative error of the cached (top-k + rest) KD loss against the exact one, at the student's
    initialisation on ``records``; and the teacher's mean probability mass outside its top k."""
    import torch

    from aeth.distill.kd import KDSettings, token_divergence, topk_of
    from aeth.training.data import IGNORE, collate, encode_records

    s, t = load(student_dir, args.threads), load(teacher_dir, args.threads)
    batch = collate(encode_records(s.tokenizer, records, "", 64), s.tokenizer.pad_token_id)
    learned = batch.pop("labels")[:, 1:] != IGNORE
    with torch.no_grad():
        student_logits = s.model(**batch).logits[:, :-1][learned]
        teacher_logits = t.model(**batch).logits[:, :-1][learned]
    settings = KDSettings(args.kd_loss, temperature=args.kd_temperature)
    top = topk_of(teacher_logits, 64, args.kd_temperature)
    exact = token_divergence(student_logits, teacher_logits, settings).sum()
    cached = token_divergence(student_logits, top, settings).sum()
    return float((exact - cached).abs() / exact), float(top.logprobs[:, -1].exp().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=int, default=3)
    parser.add_argument("--teacher-size", default="l", choices=SIZES)
    parser.add_argument("--student-size", default="s", choices=SIZES)
    parser.add_argument("--teacher-problems", type=int, default=50000)
    parser.add_argument("--teacher-steps", type=int, default=2500)
    parser.add_argument("--teacher-lr", type=float, default=2e-3)
    parser.add_argument("--teacher-batch-size", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=1000, help="The students' training prompts (every method).")
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1500, help="Optimizer steps of each student.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--kd-loss", default="fkl", choices=["fkl", "rkl", "jsd"])
    parser.add_argument("--alpha", type=float, default=0.9, help="The logit-KD run the goals judge.")
    parser.add_argument("--also-alpha", type=float, default=0.5, help="A second logit-KD run, shown beside it "
                                                                      "(0.5: aeth distill train's default).")
    parser.add_argument("--kd-temperature", type=float, default=1.0)
    parser.add_argument("--student-seeds", type=int, default=3,
                        help="Train every student this many times (seeds 0..N-1: LoRA init and data order); means are compared.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="Also write the figures here.")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    data = make_data(args.digits, args.teacher_problems, args.prompts, args.heldout, args.seed)
    root = args.root = Path(tempfile.mkdtemp(prefix="aeth-bench-distill-"))
    tok = char_tokenizer()
    teacher_dir = build(root / "teacher", args.teacher_size, tok, args.seed + 1)
    student_dir = build(root / "student", args.student_size, tok, args.seed + 2)
    n_params = {name: sum(v.numel() for v in load(d, args.threads).model.parameters())
                for name, d in (("teacher", teacher_dir), ("student", student_dir))}
    print(f"teacher {SIZES[args.teacher_size]} (hidden, layers, heads) {n_params['teacher'] / 1e6:.2f}M params; student "
          f"{SIZES[args.student_size]} {n_params['student'] / 1e6:.2f}M; {args.digits}-digit addition; {args.prompts} student "
          f"prompts, {args.heldout} held out; {args.steps} student steps of {args.batch_size}; {args.threads} thread(s)",
          flush=True)
    teacher_seconds = train_teacher(teacher_dir, data.teacher, args)
    teacher = load(teacher_dir, args.threads)
    acc = {"teacher": accuracy(teacher.model, teacher.tokenizer, data.heldout, args.digits)}
    print(f"teacher trained in {teacher_seconds:.0f} s: held-out accuracy {acc['teacher']:.3f}", flush=True)

    # sequence-level KD data: the teacher's greedy answers to the students' prompts
    said = greedy(teacher.model, teacher.tokenizer, data.prompts, args.digits + 1)
    seq_records = [{"messages": [r["messages"][0], {"role": "assistant", "content": a}]}
                   for r, a in zip(data.prompts, said, strict=True)]
    teacher_right = sum(a == answer_of(r) for a, r in zip(said, data.prompts, strict=True)) / len(said)
    del teacher
    error, outside = topk_error(student_dir, teacher_dir, data.prompts[:256], args)

    # untimed warm-up (peft's import, first-call kernel set-up), so the first timed run pays nothing extra
    student(student_dir, data.prompts, argparse.Namespace(**{**vars(args), "steps": 5}), teacher_dir, args.alpha)
    kd, also = f"logit_kd_a{args.alpha:g}", f"logit_kd_a{args.also_alpha:g}"
    methods = [("sft", data.prompts, None, 0.0), (kd, data.prompts, teacher_dir, args.alpha),
               ("seq_kd", seq_records, None, 0.0), (also, data.prompts, teacher_dir, args.also_alpha)]
    runs = {name: [] for name, *_ in methods}
    seconds = {name: 0.0 for name, *_ in methods}
    cache_bytes = 0
    for seed in range(args.student_seeds):  # interleaved: every method once per seed, SFT and logit KD back to back
        for name, records, tdir, alpha in methods:
            model, tokenizer, secs, run_dir = student(student_dir, records, args, tdir, alpha, "auto", seed)
            seconds[name] += secs
            if name == kd:
                cache_bytes = sum(f.stat().st_size for f in (run_dir / "teacher-logits").glob("*.safetensors"))
            runs[name].append(accuracy(model, tokenizer, data.heldout, args.digits))
            print(f"student {name} seed {seed}: {secs:.1f} s, held-out accuracy {runs[name][-1]:.3f}", flush=True)
    _, _, nocache, _ = student(student_dir, data.prompts, args, teacher_dir, args.alpha, "off", 0)
    sft_again = student(student_dir, data.prompts, args, None, 0.0, "auto", 0)[2]
    print(f"timing: logit KD without the cache {nocache:.1f} s, SFT again {sft_again:.1f} s", flush=True)
    acc.update({name: statistics.mean(values) for name, values in runs.items()})

    gap = acc["teacher"] - acc["sft"]
    closed = {m: (acc[m] - acc["sft"]) / gap if gap > 0 else float("nan") for m in ("seq_kd", kd, also)}
    ratio = seconds[kd] / seconds["sft"]
    spread = {name: " ".join(f"{v:.3f}" for v in values) for name, values in runs.items()}
    print()
    print(f"held-out exact match ({args.heldout} problems), mean of {args.student_seeds} student seeds [each seed]:")
    print(f"  teacher                                         {acc['teacher']:.3f}")
    print(f"  student SFT                                     {acc['sft']:.3f} [{spread['sft']}]")
    print(f"  student seqKD                                   {acc['seq_kd']:.3f} [{spread['seq_kd']}]")
    print(f"  student logit KD ({args.kd_loss}, alpha {args.alpha:g}, T {args.kd_temperature:g})      {acc[kd]:.3f} [{spread[kd]}]")
    print(f"  student logit KD ({args.kd_loss}, alpha {args.also_alpha:g}, T {args.kd_temperature:g})      {acc[also]:.3f} [{spread[also]}]")
    print(f"  (the teacher answered {teacher_right:.3f} of the students' prompts right: seqKD's data)")
    print(f"gap closed = (acc - acc_SFT) / (acc_teacher - acc_SFT), on the means: seqKD {closed['seq_kd']:.1%}, logit KD "
          f"alpha {args.alpha:g} {closed[kd]:.1%}, alpha {args.also_alpha:g} {closed[also]:.1%}")
    print(f"wall time of aeth's train() ({args.steps} steps, summed over seeds): SFT {seconds['sft']:.1f} s, logit KD "
          f"{seconds[kd]:.1f} s = {ratio:.2f}x (teacher top-64 cached after the first pass: {cache_bytes / 1e6:.1f} MB); "
          f"one run without the cache {nocache:.1f} s = {nocache / sft_again:.2f}x SFT's {sft_again:.1f} s")
    print(f"top-64 cache vs exact teacher logits at the student's start: KD loss off by {error:.2e} (relative); "
          f"teacher mass outside its top 64: {outside:.2e}")
    met_gap = closed[kd] >= GOAL_GAP and acc[kd] > acc["sft"]
    print(f"goal logit KD closes >= {GOAL_GAP:.0%} of the gap and beats SFT: {'met' if met_gap else 'not met'}")
    print(f"goal logit KD wall time <= {GOAL_TIME}x SFT: {'met' if ratio <= GOAL_TIME else 'not met'}")
    print(f"total {time.perf_counter() - started:.0f} s")
    shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"accuracy": acc, "runs": runs, "gap_closed": closed, "seconds": seconds,
                                               "nocache_seconds": nocache, "sft_again_seconds": sft_again,
                                               "teacher_right_on_prompts": teacher_right, "topk_relative_error": error,
                                               "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


if __name__ == "__main__":
    main()
