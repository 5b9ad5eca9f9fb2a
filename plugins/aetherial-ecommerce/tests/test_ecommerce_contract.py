"""The ``ecommerce`` specialist passes aeth's specialist contract."""

from aeth.testing import SpecialistContract


class TestEcommerceContract(SpecialistContract):
    specialist_name = "ecommerce"
    min_routing_heldout = 20
    min_seed_records = 200
