"""Configuration: sources, precedence, and one report for every problem."""

import pytest

from aeth.config import KEYS, env_name, load_config
from aeth.errors import ConfigError


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_defaults(cwd):
    cfg = load_config(env={})
    assert cfg["router.threshold"] == KEYS["router.threshold"].default
    assert cfg["model.default"] == "smollm2-135m-instruct"
    assert cfg.sources.get("router.threshold", "default") == "default"


def test_precedence_user_file_then_local_file_then_env_then_overrides(cwd):
    user = cwd / "xdg" / "aeth"
    user.mkdir(parents=True)
    (user / "aeth.yaml").write_text("router:\n  threshold: 0.1\n  top_k: 5\nmodel:\n  threads: 3\n")
    (cwd / "aeth.yaml").write_text("router:\n  threshold: 0.2\nmodel:\n  threads: 4\n")
    env = {"AETH_MODEL_THREADS": "6", "AETH_GENERATION_MAX_TOKENS": "99"}
    cfg = load_config(["model.threads=8"], env=env)
    assert cfg["router.top_k"] == 5  # only the user file sets it
    assert cfg["router.threshold"] == 0.2  # ./aeth.yaml beats the user file
    assert cfg["generation.max_tokens"] == 99  # env
    assert cfg["model.threads"] == 8  # -o beats env
    assert cfg.sources["model.threads"] == "-o"
    assert cfg.sources["router.threshold"].endswith("aeth.yaml")


def test_all_problems_reported_together(cwd):
    (cwd / "aeth.yaml").write_text("router:\n  treshold: 0.2\nmodel:\n  quantization: int3\n")
    with pytest.raises(ConfigError) as err:
        load_config(["generation.temperature=hot", "nonsense"], env={"AETH_MODEL_THREADS": "-1"})
    msg = str(err.value)
    assert len(err.value.problems) == 5, msg
    assert "did you mean 'router.threshold'" in msg
    assert "model.quantization must be one of auto, nf4, none" in msg
    assert "generation.temperature must be a number" in msg
    assert "expected key=value" in msg
    assert "AETH_MODEL_THREADS" in msg


def test_explicit_config_file_replaces_search_and_must_exist(cwd, tmp_path):
    (cwd / "aeth.yaml").write_text("router:\n  threshold: 0.2\n")
    other = tmp_path / "other.yaml"
    other.write_text("router:\n  threshold: 0.7\n")
    assert load_config(path=other, env={})["router.threshold"] == 0.7
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(path=tmp_path / "missing.yaml", env={})


def test_bad_yaml_and_non_mapping(cwd):
    (cwd / "aeth.yaml").write_text("router: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(env={})
    (cwd / "aeth.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(env={})


def test_plugin_keys_are_free_form(cwd):
    (cwd / "aeth.yaml").write_text("plugins:\n  coding:\n    sandbox: strict\n")
    cfg = load_config(["plugins.vision.size=3"], env={})
    assert cfg["plugins.coding"] == {"sandbox": "strict"}
    assert cfg["plugins.vision.size"] == 3
    assert cfg["plugins.unset"] is None


def test_env_names():
    assert env_name("router.threshold") == "AETH_ROUTER_THRESHOLD"
    assert env_name("home") == "AETH_HOME"
    assert load_config(env={"AETH_HOME": "/tmp/somewhere"}).home.as_posix() == "/tmp/somewhere"


def test_get_of_an_unknown_key_raises_instead_of_reading_as_unset(aeth_home):
    cfg = load_config()
    assert cfg.get("generation.temperature", 0.5) == 0.5  # known and unset: the default given
    assert cfg.get("teachers.mine") is None and cfg.get("plugins.someone.anything", 3) == 3  # free-form subtrees
    with pytest.raises(KeyError, match="unknown configuration key 'model.dtyp' \\(did you mean 'model.dtype'\\?\\)"):
        cfg.get("model.dtyp", "auto")


def test_quantization_and_dtype_choices_are_declared_once():
    from aeth.config import DTYPES, KEYS, QUANTIZATIONS
    from aeth.models import loading
    from aeth.specialist import Specialist

    assert loading.QUANTIZATIONS is QUANTIZATIONS and loading.DTYPES is DTYPES
    assert Specialist("x", "y", quantization="fp8").problems() == [
        ("quantization", f"must be one of {', '.join(QUANTIZATIONS)}, got 'fp8'")]
    assert KEYS["model.dtype"].default in DTYPES
