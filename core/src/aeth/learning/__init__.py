"""Learning from feedback: feedback -> datasets -> SFT / DPO / KTO in aeth's own training loop.

- :mod:`aeth.learning.feedback`     the rules that turn feedback rows into SFT, DPO and KTO records
- :mod:`aeth.learning.dataset`      a learn dataset version from a specialist's new feedback (card, held-out share)
- :mod:`aeth.learning.verify`       verifiers as automatic feedback: rewards for logged answers

- :mod:`aeth.learning.losses`       sequence log-probabilities, the DPO and KTO losses (pure torch, as trl computes them)
- :mod:`aeth.learning.preferences`  preference records -> :class:`PreferencePair` / :class:`KTOExample` (the record formats)
- :mod:`aeth.learning.reference`    the reference model's log-probabilities, computed once per run and kept in it
- :mod:`aeth.learning.objectives`   :class:`DPOObjective` and :class:`KTOObjective`, beside the loop's SFT objective

Nothing here imports torch at module level.
"""
