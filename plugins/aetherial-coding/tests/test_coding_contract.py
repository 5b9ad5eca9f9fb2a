"""The ``coding`` specialist passes aeth's specialist contract."""

from aeth.testing import SpecialistContract


class TestCodingContract(SpecialistContract):
    specialist_name = "coding"
    plugin_module = "aetherial_coding.plugin"
    min_routing_heldout = 20
    min_seed_records = 200
