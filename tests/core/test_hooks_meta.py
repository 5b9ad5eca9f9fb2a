"""Every hook is documented (when it is called, what it returns, who wins) and declared once."""

import inspect

from aeth import hookspecs

SPECS = {n: f for n, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, "aeth_spec")}
EXPECTED = {"register_specialists", "register_teachers", "register_commands", "route", "generate", "train",
            "evaluate", "check_input", "check_output"}


def test_the_hooks_are_the_designed_ones():
    assert set(SPECS) == EXPECTED


def test_every_hookspec_is_documented():
    for name, fn in SPECS.items():
        doc = " ".join((inspect.getdoc(fn) or "").split())
        assert len(doc.split()) >= 15, f"hook {name} needs a docstring"
        assert "Called" in doc, f"hook {name}: the docstring must say when it is called"
        firstresult = fn.aeth_spec["firstresult"]
        if firstresult:
            assert "first non-``None`` result wins" in doc, f"hook {name}: say that the first result wins"
        else:
            assert "Every plugin" in doc, f"hook {name}: say that every implementation is called"
        assert "return" in doc.lower(), f"hook {name}: say what it returns"


def test_the_hook_meta_check_is_wired(pytestconfig):
    # the check that every hook is exercised lives in tests/conftest.py; make sure it is loaded
    assert any(getattr(p, "__file__", "").endswith("tests/conftest.py")
               for p in pytestconfig.pluginmanager.get_plugins() if p)
