"""The ``vision`` specialist passes aeth's specialist contract, its eval running on a tiny VLM."""

from pathlib import Path

from aeth.testing import SpecialistContract


class TestVisionContract(SpecialistContract):
    specialist_name = "vision"
    plugin_module = "aetherial_vision.plugin"
    min_routing_heldout = 20
    min_seed_records = 200

    def contract_model_dir(self, tiny_model_dir: Path) -> Path:
        # A tiny random Idefics3 VLM, so the eval goes through the plugin's generate hook and
        # the VLM path (processor, image tiles, decode loop) end to end.
        from aetherial_vision.testing import tiny_vlm_beside

        return tiny_vlm_beside(tiny_model_dir)
