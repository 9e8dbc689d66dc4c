"""The `hybridmem` command, run in-process through its entry point (and once as a real
console script), on a real store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from hybridmem import cli


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    data_dir = str(tmp_path / "store")

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["hybridmem", *args, "--data-dir", data_dir])
        code = cli.main()
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_add_search_graph_history_roundtrip(run, tmp_path):
    code, out, _ = run("add", "My name is Alice", "My friend Peter is Spider-Man", "-u", "a")
    assert code == 0 and "ADD" in out and "Peter -is-> Spider-Man" in out
    code, out, _ = run("search", "Who is Spider-Man?", "-u", "a")
    assert code == 0
    assert out.index("Peter is Spider-Man") < out.index("My name is Alice")
    assert "vector" in out and "bm25" in out and "graph" in out
    code, out, _ = run("search", "Who is Spider-Man?", "-u", "a", "--json")
    hits = json.loads(out)["results"]
    assert hits[0]["memory"] == "Peter is Spider-Man" and "score_components" in hits[0]
    picture = tmp_path / "graph.png"
    code, out, err = run("graph", "-u", "a", "--out", str(picture))
    assert code == 0 and "friend -> Peter" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run("get-all", "-u", "a", "--json")
    memory_id = json.loads(out)["results"][0]["id"]
    code, out, _ = run("history", memory_id, "--json")
    assert code == 0 and json.loads(out)[0]["event"] == "ADD"
    code, out, _ = run("delete", memory_id)
    assert code == 0 and "deleted" in out


def test_conflict_shows_in_get_all(run):
    run("add", "I like tea", "-u", "b")
    code, out, _ = run("add", "I dislike tea", "-u", "b")
    assert "- b -likes-> tea" in out and "opposite polarity" in out
    code, out, _ = run("get-all", "-u", "b", "--include-invalid")
    assert "ended: opposite polarity" in out and "(superseded)" in out


def test_export_import_moves_a_store(run, tmp_path, monkeypatch, capsys):
    run("add", "My sister Ana lives in Lima", "-u", "c")
    run("add", "I dislike rain", "-u", "c", "--metadata", '{"mood": "grey"}')
    dump = tmp_path / "c.jsonl"
    code, _, err = run("export", "-u", "c", "--out", str(dump))
    assert code == 0 and "wrote" in err
    kinds = [json.loads(line)["kind"] for line in dump.read_text().splitlines()]
    assert kinds.count("memory") == 2 and kinds.count("relation") == 3
    other = str(tmp_path / "other")
    monkeypatch.setattr(sys, "argv", ["hybridmem", "import", str(dump), "--data-dir", other])
    assert cli.main() == 0
    assert "imported 2 memories, 4 entities, 3 relations" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["hybridmem", "search", "Where does Ana live?", "-u", "c",
                                      "--json", "--data-dir", other])
    assert cli.main() == 0
    top = json.loads(capsys.readouterr().out)["results"][0]
    assert top["memory"] == "Ana lives in Lima"


@pytest.mark.parametrize(("args", "code", "message"), [
    (("search", "tea"), 2, "--user"),
    (("search", "tea", "-u", "x", "--limit", "0"), 2, "limit"),
    (("search", "tea", "-u", "x", "--filters", "{bad"), 2, "not valid JSON"),
    (("history", "no-such-id"), 1, "not found"),
    (("delete",), 2, "MEMORY_ID"),
    (("import", "/nonexistent.jsonl"), 2, "cannot read"),
])
def test_errors_are_clear_with_exit_codes(run, args, code, message):
    got, _, err = run(*args)
    assert got == code and message in err


@pytest.mark.parametrize("args", [
    ("search", "--no-such-flag", "x"),
    ("frobnicate",),
    ("search",),
    ("search", "tea", "--limit", "many"),
])
def test_usage_errors_print_the_usage_line_and_exit_2(args, capsys):
    assert cli.main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: hybridmem") and "Traceback" not in err
    assert len(err.splitlines()) < 8


def test_store_options_go_before_or_after_the_command(tmp_path, capsys):
    store = str(tmp_path / "s")
    assert cli.main(["--data-dir", store, "add", "I enjoy chess", "-u", "g"]) == 0
    assert cli.main(["search", "chess", "-u", "g", "--data-dir", store, "--json"]) == 0
    out = capsys.readouterr().out
    assert "chess" in json.loads(out[out.index("{"):])["results"][0]["memory"]
    assert cli.main(["--json", "--data-dir", store, "stats"]) == 0
    assert json.loads(capsys.readouterr().out)["memories"] == 1


def test_a_data_dir_that_cannot_be_made_exits_2_naming_it(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["stats", "--data-dir", str(blocker / "store")]) == 2
    assert str(blocker) in capsys.readouterr().err


def test_ids_stay_whole_in_narrow_terminals(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    run("add", "A rather long note that would wrap in a narrow terminal", "-u", "n",
        "--no-infer")
    _, out, _ = run("get-all", "-u", "n", "--json")
    memory_id = json.loads(out)["results"][0]["id"]
    _, out, _ = run("get-all", "-u", "n")
    assert memory_id in out


def test_delete_all_says_memory_for_one(run):
    run("add", "Only note", "-u", "one", "--no-infer")
    code, out, _ = run("delete", "--all", "-u", "one")
    assert code == 0 and "1 memory deleted" in out


def test_doctor_and_repair(run):
    run("add", "My friend Ivo lives in Split", "-u", "d")
    code, out, _ = run("doctor")
    assert code == 0 and "match the record" in out
    for _ in range(2):  # a clean store: nothing written, and said (it printed the counts
        code, out, _ = run("repair")  # of a full rewrite every time)
        assert code == 0 and "repaired: nothing needed repair" in out, out
        assert "match the record" in out and "written" not in out
    code, out, _ = run("repair", "--json")
    report = json.loads(out)
    assert report == {"repaired": {}, "replayed": {"finished": 0, "pending": 0},
                      "clean": True, "found": {}, "pending": 0}


def test_console_script_is_installed():
    exe = shutil.which("hybridmem")
    assert exe is not None
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in ("add", "search", "get-all", "graph", "history", "delete", "export",
                    "import", "stats", "doctor", "repair", "pending", "demo"):
        assert command in out.stdout
