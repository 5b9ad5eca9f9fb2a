"""The ``coding`` specialist passes aeth's specialist contract."""

from aeth.testing import SpecialistContract


class TestCodingContract(SpecialistContract):
    specialist_name = "coding"
    plugin_name = "coding"
    plugin_module = "aetherial_coding.plugin"
