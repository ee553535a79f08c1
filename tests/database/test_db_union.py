"""Union databases: databases built apart (strong- and weak-teacher tasks) read as one."""
import json
import os
from pathlib import Path

import pytest

from assets.tiny_db import write_tiny_db
from dass.database.format import db_file_hashes, load_db, write_union
from dass.errors import DassError
from dass.hashing import file_sha256


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("union")
    write_tiny_db(root / "a", tasks=(("x", "meta_train"), ("y", "meta_test")), n_students=4)
    write_tiny_db(root / "b", tasks=(("z", "meta_train"), ("w", "meta_valid")), n_students=4)
    return root


def test_union_reads_the_members_as_one(two):
    u = two / "u"
    m = write_union(u, [two / "a" / "db", two / "b" / "db"])
    assert m["union"] == ["../a/db", "../b/db"] and json.loads((u / "manifest.json").read_text()) == m
    db = load_db(u)
    keys = {s: [d["task"]["key"] for d in ts] for s, ts in db.items()}
    assert keys == {"meta_train": ["x", "z"], "meta_valid": ["w"], "meta_test": ["y"]}
    # what a run records of the union: every member file by member folder and name, hashed by content
    h = db_file_hashes(u)
    assert h == {f"db/{p.name}": file_sha256(p) for d in ("a", "b") for p in sorted((two / d / "db").glob("*.pt"))}
    # a plain database keeps its record: file name -> hash
    assert db_file_hashes(two / "a" / "db") == {p.name: file_sha256(p) for p in sorted((two / "a" / "db").glob("*.pt"))}
    # the union survives being moved with its members (relative paths)
    moved = two / "moved"
    moved.mkdir()
    for d in ("a", "b", "u"):
        os.rename(two / d, moved / d)
    try:
        assert sum(len(v) for v in load_db(moved / "u").values()) == 4
    finally:
        for d in ("a", "b", "u"):
            os.rename(moved / d, two / d)


def test_union_refusals(two, tmp_path):
    with pytest.raises(DassError, match="also in"):        # the same key twice
        write_union(tmp_path / "dup", [two / "a" / "db", two / "a" / "db"])
    assert not (tmp_path / "dup").exists()                   # nothing written on refusal
    with pytest.raises(DassError, match="holds a database of its own"):
        write_union(two / "a" / "db", [two / "b" / "db"])
    with pytest.raises(DassError, match="database folder not found"):
        write_union(tmp_path / "u2", [tmp_path / "nope"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"union": "a", "tasks": []}))
    with pytest.raises(DassError, match="non-empty list"):
        load_db(bad)
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "manifest.json").write_text(json.dumps({"union": ["."], "tasks": []}))
    with pytest.raises(DassError, match="nested deeper"):
        load_db(loop)


@pytest.mark.slow
def test_cli_union(two, tmp_path, database_cli):
    r = database_cli("--union", tmp_path / "u", two / "a" / "db", two / "b" / "db")
    assert r.returncode == 0, r.stderr
    assert sum(len(v) for v in load_db(tmp_path / "u").values()) == 4
    r = database_cli("--union", tmp_path / "v", two / "a" / "db", two / "a" / "db")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
