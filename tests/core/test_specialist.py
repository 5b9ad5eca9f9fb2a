"""The specialist model validates what plugins hand in, naming the field."""

from dataclasses import replace

import pytest

from aeth import AdapterSpec, DatasetRecipe, GenerationDefaults, Specialist, SpecialistError
from aeth.specialist import record_problems


def good(**kw):
    return replace(Specialist(name="demo", description="A demo."), **kw)


def test_valid_specialist_has_no_problems():
    assert good().problems() == []


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "Bad Name"}, "name"),
    ({"description": " "}, "description"),
    ({"quantization": "int8"}, "quantization"),
    ({"routing_examples": "one string"}, "routing_examples"),
    ({"adapter": AdapterSpec(r=0)}, "adapter.r"),
    ({"adapter": AdapterSpec(dropout=1.5)}, "adapter.dropout"),
    ({"adapter": AdapterSpec(target_modules=())}, "adapter.target_modules"),
    ({"generation": GenerationDefaults(top_p=0)}, "generation.top_p"),
    ({"generation": GenerationDefaults(max_tokens=0)}, "generation.max_tokens"),
    ({"recipe": "not a recipe"}, "recipe"),
])
def test_each_bad_field_is_named(change, field):
    assert field in [f for f, _ in good(**change).problems()]


def test_record_validation():
    ok = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    assert record_problems(ok) == []
    assert record_problems({"messages": []})[0][0] == "messages"
    assert ("messages[0].role", "must be one of system, user, assistant, got 'bot'") in record_problems(
        {"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]})
    assert any("end with an assistant" in m for _, m in record_problems({"messages": [{"role": "user", "content": "x"}]}))


def test_recipe_split_is_deterministic_disjoint_and_stable():
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(200)]
    recipe = DatasetRecipe(name="r", version="1", load=lambda: rows)
    train, val = recipe.split()
    assert recipe.split() == (train, val)
    assert len(train) + len(val) == 200 and 8 <= len(val) <= 35
    assert not {str(r) for r in train} & {str(r) for r in val}
    # adding records never moves existing ones across the split
    more = DatasetRecipe(name="r", version="2", load=lambda: rows + [{"messages": [{"role": "user", "content": "new"}, {"role": "assistant", "content": "x"}]}])
    _, val2 = more.split()
    assert all(r in val2 for r in val)


def test_bad_record_names_recipe_index_and_field():
    recipe = DatasetRecipe(name="r", version="1", load=lambda: [{"messages": [{"role": "user", "content": "x"}]}])
    with pytest.raises(SpecialistError, match=r"recipe 'r' record 0: messages must end with an assistant"):
        recipe.records()
