"""The ``reasoning`` specialist passes aeth's specialist contract."""

from aeth.testing import SpecialistContract


class TestReasoningContract(SpecialistContract):
    specialist_name = "reasoning"
    min_routing_heldout = 20
    min_seed_records = 200
