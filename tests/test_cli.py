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
    run("add", "I like tea", "-u", "x")
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
    assert cli.main(["add", "I like tea", "-u", "x", "--data-dir", str(blocker / "store")]) == 2
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


def test_version_is_printed(capsys):
    from hybridmem import __version__

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hybridmem {__version__}"


def test_python_dash_m_hybridmem_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "hybridmem", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: hybridmem ")


@pytest.mark.parametrize(("out", "says"), [
    ("nodir/x.png", "does not exist"),
    ("x.txt", "'txt'"),
    ("file/x.png", "not a folder"),
])
def test_a_picture_that_cannot_be_written_is_one_line_exit_2(run, tmp_path, out, says):
    (tmp_path / "file").write_text("x")
    run("add", "My friend Ivo lives in Split", "-u", "p")
    target = tmp_path / out
    code, _, err = run("graph", "-u", "p", "--out", str(target))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(target) in err and says in err and "Traceback" not in err
    assert not target.exists()


READ_ONLY = [("search", "tea", "-u", "x"), ("get-all", "-u", "x"), ("get", "some-id"),
             ("graph", "-u", "x"), ("history", "some-id"), ("export", "-u", "x"), ("stats",),
             ("doctor",), ("pending",), ("pending", "--retry"), ("delete", "--all", "-u", "x"),
             ("repair",)]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a))
def test_commands_on_a_folder_with_no_store_create_nothing(tmp_path, capsys, args):
    missing, empty = tmp_path / "dd2", tmp_path / "empty"
    empty.mkdir()
    for folder in (missing, empty):
        assert cli.main([*args, "--data-dir", str(folder)]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(folder) in err, err
    assert not missing.exists() and list(empty.iterdir()) == []


def test_a_store_that_lost_its_record_is_a_store(tmp_path, capsys):
    """Engines without their record are repair's business, not "no store"."""
    store = tmp_path / "s"
    assert cli.main(["add", "I like tea", "-u", "x", "--data-dir", str(store)]) == 0
    (store / "hybridmem.sqlite").unlink()
    assert cli.main(["repair", "--data-dir", str(store)]) == 0
    assert cli.main(["search", "tea", "-u", "x", "--data-dir", str(store), "--json"]) == 0
    out = capsys.readouterr().out
    assert "I like tea" in out[out.rindex('{\n  "results"'):]


@pytest.mark.parametrize("args", [
    ("--data-dir", "a", "stats", "--data-dir", "b"),
    ("stats", "--data-dir", "a", "--data-dir", "b"),
    ("--data-dir", "a", "--data-dir", "b", "stats"),
    ("--config", "a.json", "stats", "--config", "b.json"),
])
def test_a_store_option_given_twice_is_a_usage_error(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    assert cli.main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: hybridmem") and "given twice" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "code", "kind"), [
    (("history", "no-such-id"), 1, "NotFoundError"),
    (("search", "tea"), 2, "ScopeError"),
    (("search", "tea", "-u", "x", "--limit", "many"), 2, "UsageError"),
    (("frobnicate",), 2, "UsageError"),
    (("search", "tea", "-u", "x", "--data-dir", "elsewhere"), 2, "UsageError"),
])
def test_with_json_an_error_is_a_json_object_on_stdout(run, args, code, kind):
    run("add", "I like tea", "-u", "x")
    got, out, err = run(*args, "--json")
    assert got == code and err == ""
    error = json.loads(out)["error"]
    assert error["type"] == kind and error["exit_code"] == code and error["message"]
    assert "\n" not in error["message"]


def test_with_json_no_store_is_a_json_object_too(tmp_path, capsys):
    assert cli.main(["--json", "stats", "--data-dir", str(tmp_path / "none")]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["type"] == "NotFoundError" and not captured.err


def test_export_help_names_its_format(capsys):
    assert cli.main(["export", "--help"]) == 0
    assert "JSON Lines" in " ".join(capsys.readouterr().out.split())


def test_an_export_that_cannot_be_written_is_one_line_exit_2(run, tmp_path):
    run("add", "I like tea", "-u", "x")
    for target in (tmp_path / "nodir" / "x.jsonl", tmp_path):
        code, _, err = run("export", "-u", "x", "--out", str(target))
        assert code == 2 and len(err.strip().splitlines()) == 1 and str(target) in err, err


def test_history_table_says_what_superseded_a_memory(run, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    run("add", "I like tea", "-u", "h")
    run("add", "I dislike tea", "-u", "h")
    _, out, _ = run("get-all", "-u", "h", "--include-invalid", "--json")
    [liked] = [m["id"] for m in json.loads(out)["results"] if m["memory"] == "I like tea"]
    code, out, _ = run("history", liked)
    [row] = [line for line in out.splitlines() if "SUPERSEDE" in line]
    assert code == 0 and "I like tea" in row and "I dislike tea" in row
    assert "opposite polarity: 'dislikes' replaces 'likes'" in row


def test_piped_tables_are_not_wrapped_at_80_columns(run, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # stdout is captured: not a terminal
    note = "A note long enough to wrap " + "in an eighty column terminal " * 5
    run("add", note, "-u", "w", "--no-infer")
    _, out, _ = run("get-all", "-u", "w")
    assert any(note in line for line in out.splitlines())
    _, out, _ = run("search", "eighty column terminal", "-u", "w")
    assert any(note in line for line in out.splitlines())
