"""aeth's public names: every one in ``aeth.__all__`` resolves, and importing them costs no torch."""

import subprocess
import sys

import aeth


def test_every_public_name_resolves():
    for name in aeth.__all__:
        assert getattr(aeth, name) is not None, name
    assert aeth.Aeth.__module__ == "aeth.app" and aeth.TrainPlan.__name__ == "TrainPlan"


def test_the_types_hooks_pass_are_public():
    import inspect


    assert {"Aeth", "Specialist", "Request", "Response", "Bid", "GenerationContext", "EvalSuite", "EvalReport",
            "TrainPlan", "TrainResult"} <= set(aeth.__all__)
    assert all(inspect.getdoc(getattr(aeth, name)) for name in aeth.__all__ if name != "hookimpl")


def test_importing_the_public_names_imports_no_model_stack():
    code = ("import sys, aeth; [getattr(aeth, n) for n in aeth.__all__]; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
