"""The ``ecommerce`` specialist: what it is for, how it is tuned, and how it is trained and judged."""

from __future__ import annotations

from aeth import AdapterSpec, GenerationDefaults, Policy, Specialist
from aeth.datasets import package_file, read_prompts
from aetherial_ecommerce.evals import build_suite
from aetherial_ecommerce.recipe import build_recipe

SYSTEM_PROMPT = """\
You are an e-commerce specialist for online shops. You recommend products, work out prices, \
margins and discounts, plan inventory, write customer-support replies, analyse sales data, \
extract product attributes and judge the sentiment of reviews. Show the arithmetic for numbers. \
Write support replies that are empathetic, concrete and consistent with the shop's stated \
policy. When asked to extract attributes, answer with one JSON object in a json code block, \
using null for anything the text does not say. When asked for sentiment, answer positive, \
negative, neutral or mixed with a one-line reason."""


def build_specialist() -> Specialist:
    """The ``ecommerce`` specialist as registered by the plugin."""
    return Specialist(
        name="ecommerce",
        description="Online-shop work: recommendations, pricing, inventory, support replies, sales analysis, attribute extraction, review sentiment.",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=read_prompts(package_file("aetherial_ecommerce", "data/routing_examples.txt")),
        routing_heldout=read_prompts(package_file("aetherial_ecommerce", "data/routing_heldout.txt")),
        adapter=AdapterSpec(r=16, alpha=32, dropout=0.05),
        # greedy, rp 1.0: chosen by `python bench/sweep_sampling.py ecommerce` (docs/evals.md): no sampled setting beat
        # greedy significantly on the tune cases (best: T 0.7, 0.375 vs 0.125 on 8, sign test p = 0.22), and greedy is
        # what the eval suite and the promotion gate measure
        generation=GenerationDefaults(temperature=0.0, top_p=0.9, top_k=50, max_tokens=384, repetition_penalty=1.0),
        recipe=build_recipe(),
        suite=build_suite(),
        # customer data (emails, phone and card numbers, addresses of payment) is masked in answers and
        # before an interaction is stored: support replies quote what customers wrote
        policy=Policy(pii="mask", redact=True),
        version="0.1",
    )
