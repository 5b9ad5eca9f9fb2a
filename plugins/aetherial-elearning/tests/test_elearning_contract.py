"""The ``elearning`` specialist passes aeth's specialist contract."""

from aeth.testing import SpecialistContract


class TestElearningContract(SpecialistContract):
    specialist_name = "elearning"
    min_routing_heldout = 20
    min_seed_records = 200
