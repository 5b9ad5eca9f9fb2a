"""Training data from files: formats, column mappings, errors naming file/line/field, generated sets."""

import csv
import json

import pytest

from aeth import DatasetRecipe, Specialist
from aeth.datasets import ColumnMapping, DatasetError, generated_sets, read_records, training_records

CHAT = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_with_messages(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT, CHAT])
    assert read_records(path) == [CHAT, CHAT]


def test_records_about_images_keep_their_image_paths(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{**CHAT, "images": ["images/a.png"]}, CHAT])
    assert read_records(path) == [{**CHAT, "images": ["images/a.png"]}, CHAT]
    write_jsonl(path, [{**CHAT, "images": "a.png"}])
    with pytest.raises(DatasetError, match="d.jsonl:1: field 'images' must be a list of image paths"):
        read_records(path)


def test_csv_tsv_json_with_a_column_mapping(tmp_path):
    with open(tmp_path / "d.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "response", "sys"])
        w.writerow(["What is 2+2?", "4, because 2+2=4.", "Be brief."])
        w.writerow(["Multi\nline?", "Yes, quoted fields may span lines.", ""])
    mapping = ColumnMapping.parse("prompt=question, answer=response, system=sys")
    records = read_records(tmp_path / "d.csv", mapping)
    assert [m["role"] for m in records[0]["messages"]] == ["system", "user", "assistant"]
    assert records[1]["messages"] == [{"role": "user", "content": "Multi\nline?"},
                                      {"role": "assistant", "content": "Yes, quoted fields may span lines."}]
    (tmp_path / "d.tsv").write_text("prompt\tanswer\nHi\tHello\n")
    assert read_records(tmp_path / "d.tsv")[0]["messages"][1]["content"] == "Hello"  # default column names
    (tmp_path / "d.json").write_text(json.dumps([{"conv": json.dumps(CHAT["messages"])}]))
    assert read_records(tmp_path / "d.json", ColumnMapping.parse("messages=conv")) == [CHAT]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"q": ["One?", "Two?"], "a": ["1", "2"], "messages": [CHAT["messages"], CHAT["messages"]]})
    pq.write_table(table, tmp_path / "d.parquet")
    assert read_records(tmp_path / "d.parquet", ColumnMapping.parse("prompt=q,answer=a"))[1]["messages"][0]["content"] == "Two?"
    assert read_records(tmp_path / "d.parquet", ColumnMapping(messages="messages")) == [CHAT, CHAT]


@pytest.mark.parametrize("content,mapping,message", [
    ('{"messages": [{"role": "user", "content": "x"}]}\n', None, "d.jsonl:1: field 'messages': must end with an assistant"),
    ('\n' + json.dumps(CHAT) + '\n{"messages": oops}\n', None, "d.jsonl:3: not valid JSON"),
    ('{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}\n', None,
     "d.jsonl:1: field 'messages[0].role': must be one of system, user, assistant"),
    ('{"question": "q", "answer": "a"}\n', None, "d.jsonl:1: no field 'prompt' (fields: question, answer)"),
    ('{"prompt": "q", "answer": ""}\n', None, "d.jsonl:1: field 'answer' must be non-empty text"),
])
def test_errors_name_file_line_and_field(tmp_path, content, mapping, message):
    (tmp_path / "d.jsonl").write_text(content)
    with pytest.raises(DatasetError) as e:
        read_records(tmp_path / "d.jsonl", mapping)
    assert message in str(e.value)


def test_csv_error_names_the_line(tmp_path):
    (tmp_path / "d.csv").write_text("prompt,answer\nok,fine\n\"two\nlines\",\nthird,row\n")
    with pytest.raises(DatasetError, match=r"d.csv:4: field 'answer' must be non-empty"):
        read_records(tmp_path / "d.csv")


def test_bad_format_mapping_and_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="unknown data format '.xlsx'"):
        read_records(tmp_path / "d.xlsx")
    with pytest.raises(DatasetError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="bad column mapping 'question'"):
        ColumnMapping.parse("question")


def test_training_records_combine_seed_files_and_generated_sets(tmp_path):
    seed = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(40)]
    spec = Specialist(name="demo", description="d", recipe=DatasetRecipe("demo-seed", "1", lambda: seed))
    user = write_jsonl(tmp_path / "mine.jsonl", [CHAT, seed[0]])  # one new, one duplicate of the seed
    gen = tmp_path / "home" / "datasets" / "demo" / "20261125-teacher"
    gen.mkdir(parents=True)
    write_jsonl(gen / "records.jsonl", [{"messages": [{"role": "user", "content": "t"}, {"role": "assistant", "content": "T"}]}])
    assert generated_sets(tmp_path / "home", "demo") == [gen / "records.jsonl"]
    data = training_records(spec, tmp_path / "home", files=[(user, None)])
    assert data.sources == {"recipe demo-seed 1": 40, str(user): 2, "generated 20261125-teacher": 1}
    assert len(data.train) + len(data.validation) == 42
    again = training_records(spec, tmp_path / "home", files=[(user, None)], include_generated=False)
    # adding or removing other records never moves a record across the split
    assert [r for r in again.validation if r in data.validation] == again.validation


def test_data_command_counts_and_reports_errors(aeth_home, register_plugin, tmp_path):
    from click.testing import CliRunner

    from aeth import hookimpl
    from aeth.cli import cli

    seed = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(30)]

    class Demo:
        @hookimpl
        def register_specialists(self, register):
            register(Specialist(name="demo", description="d", recipe=DatasetRecipe("demo-seed", "1", lambda: seed)))

    register_plugin(Demo(), "demo-plugin")
    (tmp_path / "mine.csv").write_text("question,reply\nWhere is my order?,It ships today.\n")
    out = CliRunner().invoke(cli, ["data", "demo", "--file", str(tmp_path / "mine.csv"), "--map", "prompt=question,answer=reply", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["sources"] == {"recipe demo-seed 1": 30, str(tmp_path / "mine.csv"): 1}
    assert data["train"] + data["validation"] == 31
    bad = CliRunner().invoke(cli, ["data", "demo", "--file", str(tmp_path / "mine.csv")])
    assert bad.exit_code == 1 and "mine.csv:2: no field 'prompt'" in bad.output
