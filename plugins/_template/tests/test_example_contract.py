"""The example specialist passes aeth's specialist contract (rename along with the package)."""

from aeth.testing import SpecialistContract


class TestExampleContract(SpecialistContract):
    specialist_name = "cooking"                  # RENAME: your specialist's name
    plugin_name = "example"                      # RENAME: your entry-point name
    plugin_module = "aetherial_example.plugin"   # RENAME: your plugin module
    min_routing_heldout = 20                     # data/routing_heldout.txt: at least 20 prompts
