"""The command line: help, listings, `aeth run` on the tiny model, exit codes and stdin."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aeth import hookimpl
from aeth.cli import cli, main
from aeth.plugins import default_host

AETH = str(Path(sys.executable).with_name("aeth"))
HEAVY = ("torch", "transformers", "peft", "sentence_transformers", "bitsandbytes")


def invoke(*args, input=None):
    default_host()
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["plugins", "--all"], ["specialists"], ["specialists", "--json"], ["config"]])
def test_listing_commands_never_import_the_model_stack(args, aeth_home):
    probe = textwrap.dedent(f"""
        import sys
        from aeth.cli import main
        try:
            main({args!r})
        except SystemExit as e:
            assert not e.code, e.code
        print("HEAVY", sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env={**os.environ, "AETH_HOME": str(aeth_home)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stderr


def test_plugins_json_lists_name_version_hooks_registrations(aeth_home):
    result = invoke("plugins", "--all")
    data = json.loads(result.stdout)
    general = next(p for p in data if p["name"] == "aeth.general")
    assert general["default"] is True and general["hooks"] == ["register_specialists"]
    assert general["registered"]["specialists"] == ["general"]
    assert {"aeth.router", "aeth.generator", "aeth.evaluator"} <= {p["name"] for p in data}
    assert not any(p["default"] for p in json.loads(invoke("plugins").stdout))


def test_specialists_table_and_json(aeth_home):
    assert "general" in invoke("specialists").stdout
    rows = json.loads(invoke("specialists", "--json").stdout)
    assert any(r["name"] == "general" and r["plugin"] == "aeth.general" for r in rows)


def test_config_shows_sources(aeth_home):
    rows = json.loads(invoke("-o", "router.threshold=0.5", "config", "--json").stdout)
    row = next(r for r in rows if r["key"] == "router.threshold")
    assert (row["value"], row["source"], row["env"]) == (0.5, "-o", "AETH_ROUTER_THRESHOLD")


def test_bad_config_is_one_error(aeth_home):
    result = CliRunner().invoke(cli, ["-o", "router.treshold=1", "-o", "model.threads=0", "config"])
    assert result.exit_code == 1
    assert "2 problem(s)" in result.output and "did you mean 'router.threshold'" in result.output


def test_run_streams_an_answer_from_the_tiny_model(aeth_home, tiny_model_dir):
    result = invoke("-o", f"model.default={tiny_model_dir}", "run", "-s", "general", "--seed", "1", "--max-tokens", "8", "hello")
    assert result.exit_code == 0
    assert result.stdout.strip()
    assert "[general] chosen with --specialist" in result.stderr
    assert "tokens in" in result.stderr
    quiet = invoke("-o", f"model.default={tiny_model_dir}", "run", "-q", "-s", "general", "--seed", "1", "--max-tokens", "8", "hello")
    assert quiet.stderr == "" and quiet.stdout == result.stdout


def test_run_json_is_one_object(aeth_home, tiny_model_dir):
    result = invoke("-o", f"model.default={tiny_model_dir}", "run", "--json", "-s", "general", "--max-tokens", "5", "--seed", "0", "hi")
    data = json.loads(result.stdout)
    assert data["specialist"] == "general" and data["tokens_out"] <= 5 and data["reason"] == "chosen with --specialist"
    assert {"id", "text", "tokens_in", "seconds", "finish_reason"} <= set(data)


def test_run_reads_the_prompt_from_stdin(aeth_home, tiny_model_dir):
    args = ("-o", f"model.default={tiny_model_dir}", "run", "--json", "-s", "general", "--max-tokens", "3", "--seed", "0")
    piped = json.loads(invoke(*args, input="hello from a pipe\n").stdout)
    assert piped["tokens_in"] > json.loads(invoke(*args, "hi").stdout)["tokens_in"]


def test_run_reads_a_document_longer_than_the_context_from_a_file(aeth_home, tiny_model_dir, tmp_path):
    """The tiny model's context is 512 tokens; a document of several thousand rolls through the
    sink cache and the answer still comes (the prompt, read last, stays in view)."""
    document = tmp_path / "long.txt"
    document.write_text("The quick brown fox jumps over the lazy dog. " * 400, encoding="utf-8")
    args = ("-o", f"model.default={tiny_model_dir}", "run", "--json", "-s", "general", "--max-tokens", "4", "--seed", "0")
    data = json.loads(invoke(*args, "--file", str(document), "summarise").stdout)
    assert data["tokens_in"] > 2000 and data["tokens_out"] >= 1
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9".encode("latin-1"))
    bad = invoke(*args, "--file", str(latin1), "summarise")
    assert bad.exit_code == 2 and "latin1.txt is not UTF-8 text" in bad.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["run", "-s", "nosuch", "hi"], 1, "unknown specialist 'nosuch'"),
    (["run", "--temperature", "-1", "hi"], 2, "Invalid value for '--temperature'"),
    (["run", "--max-tokens", "zero", "hi"], 2, "Invalid value for '--max-tokens'"),
    (["run"], 2, "no prompt"),
    (["-o", "model.default=/no/such/model", "run", "-s", "general", "hi"], 1, "no model named '/no/such/model'"),
])
def test_user_errors_exit_non_zero_with_one_line(aeth_home, args, code, message):
    result = CliRunner().invoke(cli, args, input="")
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_broken_plugin_leaves_run_working_with_one_warning(aeth_home, tiny_model_dir, tmp_path):
    site = tmp_path / "site"
    (site / "broken_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "broken_plugin.py").write_text("raise ImportError('this plugin is broken on purpose')\n")
    (site / "broken_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (site / "broken_plugin-1.0.dist-info" / "entry_points.txt").write_text("[aeth]\nbroken = broken_plugin\n")
    env = {**os.environ, "AETH_HOME": str(aeth_home), "PYTHONPATH": str(site)}
    out = subprocess.run([AETH, "-o", f"model.default={tiny_model_dir}", "run", "-s", "general", "--max-tokens", "4", "hi"],
                         capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, out.stderr
    assert "'broken-plugin'" in warnings[0] and "this plugin is broken on purpose" in warnings[0]


class CommandPlugin:
    """Adds `aeth hello`, and tries to replace `aeth run` and delete `aeth route`."""

    @hookimpl
    def register_commands(self, cli):
        @cli.command()
        @click.argument("name")
        def hello(name):
            """Greet NAME (added by a plugin)."""
            click.echo(f"hello, {name}")

        @cli.command("run")
        def hijacked_run():
            click.echo("hijacked")

        del cli.commands["route"]


@pytest.fixture
def restore_commands():
    saved = dict(cli.commands)
    yield
    cli.commands.clear()
    cli.commands.update(saved)


def run_main(*args):
    """``aeth ARGS`` in this process (main() routes warnings to stderr; catch_warnings undoes that)."""
    with warnings.catch_warnings():
        try:
            main(list(args))
        except SystemExit as e:
            return e.code
    return 0


def test_plugin_commands_are_added_but_never_replace_aeths(aeth_home, register_plugin, restore_commands, capsys):
    builtin = dict(cli.commands)
    assert register_plugin(CommandPlugin(), "greeter")
    assert run_main("hello", "ada") == 0
    out = capsys.readouterr()
    assert out.out == "hello, ada\n"
    assert out.err == "warning: plugin 'greeter' tried to replace aeth's own command 'run'; kept the original\n"
    assert cli.commands["run"] is builtin["run"] and cli.commands["route"] is builtin["route"]
    # aeth plugins says who added the command (a second main() re-adds it without a clash)
    assert run_main("plugins") == 0
    out = capsys.readouterr()
    assert "'hello'" not in out.err
    greeter = next(p for p in json.loads(out.out) if p["name"] == "greeter")
    assert greeter["registered"]["commands"] == ["hello"]
    assert "register_commands" in greeter["hooks"]


def test_a_plugin_cannot_take_another_plugins_command(aeth_home, register_plugin, restore_commands, capsys):
    class Other:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello")
            def other_hello():
                click.echo("other")

    class First:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello")
            def first_hello():
                click.echo("first")

    register_plugin(First(), "first")
    register_plugin(Other(), "other")
    assert run_main("hello") == 0
    out = capsys.readouterr()
    winner, loser = out.out.strip(), ({"first", "other"} - {out.out.strip()}).pop()
    assert winner in {"first", "other"}
    assert out.err == f"warning: plugin {loser!r} tried to replace the command added by plugin {winner!r} 'hello'; kept the original\n"


def test_stdin_that_is_not_utf8_is_answered_with_one_warning(aeth_home, tiny_model_dir):
    """Routed (the router embeds the prompt), so a stray byte must be decoded before it gets there."""
    env = {**os.environ, "AETH_HOME": str(aeth_home), "AETH_LOAD_PLUGINS": ""}
    out = subprocess.run([AETH, "-o", f"model.default={tiny_model_dir}", "-o", "model.threads=1", "run", "--json",
                          "--max-tokens", "2", "--seed", "0"], input="What is the capital of Fran\xe7e?".encode("latin-1"),
                         capture_output=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout)["specialist"] == "general"
    said = [line for line in out.stderr.decode().splitlines() if line.startswith("warning:")]
    assert said == ["warning: standard input is not valid UTF-8: 1 undecodable byte sequence replaced by U+FFFD "
                    "(convert it to UTF-8, e.g. with iconv, to keep them)"]


QUIET_PROBE = """
import sys
if sys.argv[1] == "quiet":
    from aeth.app import Aeth
    Aeth()
import bitsandbytes  # on CPUs with AVX512-BF16 it advises `pip install kernels`
from deepspeed.accelerator import get_accelerator
get_accelerator()  # without CUDA, says it fell back to the CPU
"""


def test_library_advice_to_their_developers_never_reaches_users(aeth_home):
    env = {k: v for k, v in os.environ.items() if k != "DS_ACCELERATOR"}

    def output(mode):  # DeepSpeed logs to stdout, where an answer goes
        done = subprocess.run([sys.executable, "-c", QUIET_PROBE, mode], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    loud, quiet = output("loud"), output("quiet")
    assert "Setting accelerator to CPU" in loud  # the control: this machine does provoke the message
    assert "Setting accelerator to CPU" not in quiet
    if "pip install kernels" in loud:  # only CPUs with AVX512-BF16 provoke bitsandbytes' advice
        assert "pip install kernels" not in quiet


def test_reading_a_long_input_shows_progress_and_q_silences_it(aeth_home, tiny_model_dir, tmp_path):
    document = tmp_path / "long.txt"
    document.write_text("The quick brown fox jumps over the lazy dog. " * 1000, encoding="utf-8")
    args = ("-o", f"model.default={tiny_model_dir}", "run", "-s", "general", "--max-tokens", "2", "--seed", "0",
            "--file", str(document))
    shown = invoke(*args, "summarise")
    assert shown.exit_code == 0 and "general: reading the input:" in shown.stderr and "tokens" in shown.stderr
    silent = invoke(*args, "-q", "summarise")
    assert silent.exit_code == 0 and silent.stderr == ""
