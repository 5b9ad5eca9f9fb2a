"""What answers cost: aeth's machine time at ``cost.machine_per_hour``, beside what the same tokens
would cost at the API prices of ``cost.compare`` models (the price table of ``aeth distill prices``).

An answer costs ``machine_seconds * machine_per_hour / 3600`` on aeth, and
``(tokens_in * input_price + tokens_out * output_price) / 1e6`` at an API's list prices (USD per
million tokens). ``machine_seconds`` is the answer's share of the machine's time, so a machine
answering eight requests at once charges each an eighth of every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``cost.machine_per_hour`` when unset: an assumption, meant to be replaced by the real price of the machine
DEFAULT_MACHINE_PER_HOUR = 0.10
#: ``cost.compare`` when unset
DEFAULT_COMPARE = ("gpt-4o-mini", "gpt-4o")


def model_names(value: Any) -> list[str]:
    """``cost.compare`` as a list: a list of names, or one comma-separated string."""
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    return [str(n).strip() for n in value or () if str(n).strip()]


@dataclass(frozen=True)
class Pricing:
    """The price of machine time and the API prices to compare with.

    ``compare`` maps each model to its ``(input, output)`` USD per million tokens, or ``None`` when
    the price table does not know the model.
    """

    machine_per_hour: float = DEFAULT_MACHINE_PER_HOUR
    compare: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Pricing:
        """The built-in assumptions: $0.10 an hour, compared with the built-in prices of :data:`DEFAULT_COMPARE`."""
        from aeth.distill.collect import DEFAULT_PRICES

        return cls(DEFAULT_MACHINE_PER_HOUR, {m: DEFAULT_PRICES.get(m) for m in DEFAULT_COMPARE})

    @classmethod
    def from_config(cls, config: Any) -> Pricing:
        """``cost.machine_per_hour`` and ``cost.compare`` from ``config``, priced from its home's price table."""
        from aeth.distill.collect import prices

        table, _ = prices(config.home)
        names = model_names(config.get("cost.compare", ",".join(DEFAULT_COMPARE)))
        return cls(float(config.get("cost.machine_per_hour", DEFAULT_MACHINE_PER_HOUR)), {m: table.get(m) for m in names})

    def aeth_usd(self, machine_seconds: float) -> float:
        """USD for ``machine_seconds`` of this machine."""
        return machine_seconds * self.machine_per_hour / 3600

    def api_usd(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD for these tokens at ``model``'s API prices, or ``None`` when they are unknown."""
        price = self.compare.get(model)
        return None if price is None else (tokens_in * price[0] + tokens_out * price[1]) / 1e6

    def report(self, tokens_in: int, tokens_out: int, machine_seconds: float) -> dict[str, Any]:
        """aeth's cost of these tokens and each compared API's, with USD per million tokens (in and out
        together) and the ratio API / aeth (how many times cheaper aeth was; ``None`` when aeth's cost is 0)."""
        tokens = tokens_in + tokens_out
        ours = self.aeth_usd(machine_seconds)

        def per_mtok(usd: float | None) -> float | None:
            return None if usd is None or not tokens else usd / tokens * 1e6

        compared = []
        for model, price in self.compare.items():
            usd = self.api_usd(model, tokens_in, tokens_out)
            compared.append({
                "model": model, "price_in": price[0] if price else None, "price_out": price[1] if price else None,
                "usd": usd, "usd_per_mtok": per_mtok(usd), "ratio": usd / ours if usd is not None and ours > 0 else None,
                "saved_usd": None if usd is None else usd - ours,
                **({} if price else {"note": f"no price for {model!r}: add it to $AETH_HOME/prices.yaml (see `aeth distill prices`)"}),
            })
        return {"machine_per_hour": self.machine_per_hour, "machine_seconds": machine_seconds, "tokens": tokens,
                "aeth_usd": ours, "aeth_usd_per_mtok": per_mtok(ours), "compare": compared}
