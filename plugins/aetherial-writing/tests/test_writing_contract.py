"""The ``writing`` specialist passes aeth's specialist contract."""

from aeth.testing import SpecialistContract


class TestWritingContract(SpecialistContract):
    specialist_name = "writing"
    min_routing_heldout = 20
    min_seed_records = 200
