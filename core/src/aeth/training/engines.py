"""How a run's processes share the work, behind one small interface the loop calls.

- :class:`Engine`     one process (CPU or one GPU): plain torch
- :class:`DDP`        every rank holds the whole model; gradients all-reduced once per optimizer step
- :class:`FSDP`       FSDP2 ``fully_shard``: weights, gradients and optimizer state sharded
- :class:`DeepSpeed`  a ZeRO engine, which accumulates, clips and steps itself

The loop calls :meth:`~Engine.wrap` once, then per step :meth:`~Engine.set_lr`,
:meth:`~Engine.zero_grad`, per micro-batch :meth:`~Engine.accumulating` and
:meth:`~Engine.backward`, then :meth:`~Engine.step`; checkpoints go through
:meth:`~Engine.full_state` and :meth:`~Engine.load_full_state`, which always use one process's
layout (whole tensors, optimizer state keyed by parameter index), so any run resumes under any
engine and process count.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from aeth.training.distributed import Dist, trainable_named, unwrap


class Engine:
    """One process: the model as it is, torch's optimizer, gradient clipping at 1.0."""

    def __init__(self, dist: Dist):
        self.dist = dist
        self.model: Any = None
        self.optimizer: Any = None
        self.trainable: list = []

    def wrap(self, model: Any, make_optimizer: Callable[[list], Any]) -> None:
        """Take ``model`` (a PEFT model) for training and build its optimizer with ``make_optimizer(params)``."""
        self.model = self._wrap(model)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.trainable)

    def _wrap(self, model: Any) -> Any:
        return model

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next optimizer step."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @property
    def lr(self) -> float:
        """The learning rate of the last step."""
        return self.optimizer.param_groups[0]["lr"]

    def zero_grad(self) -> None:
        """Forget the previous step's gradients."""
        self.optimizer.zero_grad(set_to_none=True)

    def accumulating(self, last: bool) -> Any:
        """A context for one micro-batch's forward and backward (``last``: the step's final one)."""
        return nullcontext()

    def backward(self, loss: Any) -> None:
        """Add ``loss``'s gradients."""
        loss.backward()

    def step(self) -> None:
        """The optimizer step, after every micro-batch of the step."""
        import torch

        torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
        self.optimizer.step()

    def trainable_names(self) -> set[str]:
        """Names of the trainable parameters, as in the unwrapped model."""
        return {name for name, _ in trainable_named(self.model)}

    def full_state(self) -> tuple[dict, dict]:
        """(trainable weights by name, optimizer state dict keyed by parameter index), whole tensors
        (a collective under FSDP and DeepSpeed: every rank calls it)."""
        return {n: p.detach() for n, p in trainable_named(self.model)}, self.optimizer.state_dict()

    def load_full_state(self, weights: dict, optim: dict) -> None:
        """Put :meth:`full_state`'s layout back into the model and optimizer (every rank, same values)."""
        import torch

        named = dict(unwrap(self.model).named_parameters())
        with torch.no_grad():
            for key, value in weights.items():
                named[key].copy_(value)
        self.optimizer.load_state_dict(optim)

    def rank_difference(self, weights: dict) -> float | None:
        """How far the ranks' copies of ``weights`` ended apart (None: one copy only)."""
        return None

    def trained_model(self) -> Any:
        """The trained PEFT model, when this process holds all of it (else None)."""
        return unwrap(self.model)


class DDP(Engine):
    """DistributedDataParallel: a full copy per rank, one all-reduce per optimizer step."""

    def _wrap(self, model: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        cuda = self.dist.device.startswith("cuda")
        return DistributedDataParallel(model, device_ids=[self.dist.local_rank] if cuda else None)

    def accumulating(self, last: bool) -> Any:
        return nullcontext() if last else self.model.no_sync()  # all-reduce once a step, on its last micro-batch

    def rank_difference(self, weights: dict) -> float | None:
        return max_difference_from_rank0(weights, self.dist)


class FSDP(Engine):
    """FSDP2: ``fully_shard`` on each decoder layer, then on the whole model."""

    def _wrap(self, model: Any) -> Any:
        from torch.distributed.fsdp import fully_shard

        for module in model.modules():
            if type(module).__name__.endswith("DecoderLayer"):
                fully_shard(module)
        fully_shard(model)
        return model

    def full_state(self) -> tuple[dict, dict]:
        # the optimizer state comes back keyed by parameter name: re-keyed by position, the layout of
        # a one-process optimizer.state_dict(), so checkpoints are interchangeable
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        weights, optim = get_state_dict(self.model, optimizers=self.optimizer, options=options)
        if "param_groups" not in optim:  # with cpu_offload the whole state lands on rank 0 only
            return weights, {"state": {}, "param_groups": []}
        order = [name for group in optim["param_groups"] for name in group["params"]]
        index = {name: i for i, name in enumerate(order)}
        return weights, {"state": {index[name]: state for name, state in optim["state"].items()},
                         "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in optim["param_groups"]]}

    def load_full_state(self, weights: dict, optim: dict) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        names = {id(p): n for n, p in self.model.named_parameters()}
        order = [names[id(p)] for group in self.optimizer.param_groups for p in group["params"]]
        keyed = {"state": {order[int(i)]: state for i, state in optim["state"].items()},
                 "param_groups": [{**g, "params": [order[int(i)] for i in g["params"]]} for g in optim["param_groups"]]}
        set_state_dict(self.model, optimizers=self.optimizer, model_state_dict=weights, optim_state_dict=keyed,
                       options=StateDictOptions(full_state_dict=True, ignore_frozen_params=True, strict=False))

    def trained_model(self) -> Any:
        return None  # sharded: no process holds the whole model


class DeepSpeed(Engine):
    """A DeepSpeed engine from the plan's JSON config (:mod:`aeth.training.deepspeed_engine`)."""

    def __init__(self, dist: Dist, plan: Any):
        super().__init__(dist)
        self.plan = plan

    def wrap(self, model: Any, make_optimizer: Callable[[list], Any]) -> None:
        from aeth.training import deepspeed_engine

        plan = self.plan
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        config = deepspeed_engine.config(plan.deepspeed, plan.batch_size, plan.grad_accum, self.dist.world, plan.lr)
        self.model, self.optimizer = deepspeed_engine.engine(model, self.trainable, config, make_optimizer)

    def zero_grad(self) -> None:
        pass  # the engine clears gradients at its accumulation boundary

    def backward(self, loss: Any) -> None:
        self.model.backward(loss, scale_wrt_gas=False)
        self.model.step()  # an optimizer step only at the accumulation boundary

    def step(self) -> None:
        pass  # taken in backward(), at the boundary

    def full_state(self) -> tuple[dict, dict]:
        from aeth.training.deepspeed_engine import full_state

        return full_state(self.model, self.optimizer)

    def load_full_state(self, weights: dict, optim: dict) -> None:
        from aeth.training.deepspeed_engine import load_full_state

        load_full_state(self.model, self.optimizer, weights, optim)

    def rank_difference(self, weights: dict) -> float | None:
        return max_difference_from_rank0(weights, self.dist) if self.dist.active else None

    def trained_model(self) -> Any:
        return None


def create(plan: Any, dist: Dist) -> Engine:
    """The engine for ``plan`` in this job: DeepSpeed when it names a config, else one process, FSDP or DDP."""
    if plan.deepspeed:
        return DeepSpeed(dist, plan)
    if not dist.active:
        return Engine(dist)
    return FSDP(dist) if plan.fsdp else DDP(dist)


def max_difference_from_rank0(weights: dict, dist: Dist) -> float:
    """The largest absolute difference between this job's ranks' copies of ``weights`` (0.0 when
    they agree bit for bit, as DDP promises); a collective."""
    import torch
    import torch.distributed as torch_dist

    flat = torch.cat([weights[k].detach().float().flatten() for k in sorted(weights)]).to(dist.device)
    reference = flat.clone()
    torch_dist.broadcast(reference, src=0)
    largest = (flat - reference).abs().max().reshape(1)
    torch_dist.all_reduce(largest, op=torch_dist.ReduceOp.MAX)
    return float(largest.item())
