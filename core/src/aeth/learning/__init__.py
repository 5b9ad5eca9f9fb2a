"""Learning from feedback: feedback -> datasets -> SFT / DPO / KTO in aeth's own training loop.

- :mod:`aeth.learning.feedback`     the rules that turn feedback rows into SFT, DPO and KTO records
- :mod:`aeth.learning.dataset`      a learn dataset version from a specialist's new feedback (card, held-out share)
- :mod:`aeth.learning.verify`       verifiers as automatic feedback: rewards for logged answers

- :mod:`aeth.learning.losses`       sequence log-probabilities, the DPO and KTO losses (pure torch, as trl computes them)
- :mod:`aeth.learning.preferences`  preference records -> :class:`PreferencePair` / :class:`KTOExample` (the record formats)
- :mod:`aeth.learning.reference`    the reference model's log-probabilities, computed once per run and kept in it
- :mod:`aeth.learning.objectives`   :class:`DPOObjective` and :class:`KTOObjective`, beside the loop's SFT objective
- :mod:`aeth.learning.run`          ``aeth learn``: lock -> verify -> dataset -> train -> gate -> promote; resume, status
- :mod:`aeth.learning.plan`         :class:`LearnPlan`, a TrainPlan with defaults for small feedback datasets
- :mod:`aeth.learning.gate`         learning's promotion gate: eval suite and held-out agreement
- :mod:`aeth.learning.agreement`    agreement of an adapter version with held-out feedback
- :mod:`aeth.learning.lock`         one learn per specialist (``fcntl.flock``, freed when its holder dies)
- :mod:`aeth.learning.schedule`     when a specialist is due to learn (``learn.*`` config: N rows or T hours)
- :mod:`aeth.learning.watch`        ``aeth learn --watch``: learn (or resume) what is due, at low CPU priority

Nothing here imports torch at module level.
"""
