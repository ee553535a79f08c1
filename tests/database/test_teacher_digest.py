"""The teacher's proxy digest in a task file (``teacher.proxy_digest``): written by the merge, added to
older files by ``--record-digests``, checked by the format. The digest is recomputed here from the
checkpoint's raw tensors (float16 ones made float32 by hand), not through the loader the code uses."""
import json

import numpy as np
import pytest
import torch

from assets.tiny_db import write_build_config, write_quadrant_glyphs, write_tiny_db, tiny_teacher_state
from dass.cli import run_main
from dass.config import from_dict
from dass.database import __main__ as db_cli
from dass.database.config import DatabaseConfig
from dass.database.format import load_task_db, save_task_db, validate_task_db
from dass.database.merge import merge_task, record_teacher_digests
from dass.database.plan import build_tasks, teacher_path
from dass.errors import DassError
from dass.hashing import file_sha256, proxy_state_sha256
from dass.space import load_space, macs, params, sample_unique, teacher_arch
from dass.teacher.checkpoint import save_teacher, store_half


def digest_by_hand(ckpt) -> str:
    """proxy_state_sha256 of the file's state dict with every floating tensor as float32."""
    sd = torch.load(ckpt, weights_only=True)["state_dict"]
    return proxy_state_sha256({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})


def test_the_merge_records_the_digest_of_the_teacher_as_loaded(tmp_path):
    import yaml
    data = tmp_path / "data"
    write_quadrant_glyphs(data, "a", 0, per_class=6)
    write_quadrant_glyphs(data, "b", 1, per_class=6)
    cfg = from_dict(DatabaseConfig, yaml.safe_load(write_build_config(tmp_path, "m", data, epochs=1).read_text()))
    task = next(t for t in cfg.all_tasks if t.key == "glyphs-a")
    space = load_space(cfg.space)
    ckpt = teacher_path(cfg, task)
    save_teacher(ckpt, tiny_teacher_state(space, 4, seed=3), space, 4, task.dataset,
                 {"best_acc": 80.0, "final_acc": 79.0}, recipe=None, seed=None)
    store_half(ckpt)       # as the shipped teachers: float16 on disk, float32 as loaded
    assert torch.load(ckpt, weights_only=True)["state_dict"]["conv1.weight"].dtype == torch.float16
    archs = sample_unique(space, 3, np.random.default_rng(0), exclude={teacher_arch(space)})
    results = [{"arch": a.to_dict(), "best_acc": 50.0 + i, "final_acc": 49.0 + i, "final_loss": 1.0, "wall_s": 1.0,
                "macs": macs(a, space, 4), "params": params(a, space, 4)} for i, a in enumerate(archs)]
    path, _ = merge_task(cfg, task, results, [1], build_tasks(cfg))
    d = load_task_db(path)
    assert d["teacher"]["proxy_digest"] == digest_by_hand(ckpt)
    # the float16 bytes themselves hash otherwise: the digest is of the loaded float32 weights
    assert d["teacher"]["proxy_digest"] != proxy_state_sha256(torch.load(ckpt, weights_only=True)["state_dict"])


def _old_db(root):
    """A database of two tasks without the digest (format v1 files, as merged before it), a manifest
    recording the files' sha256 as the merge does."""
    tasks = write_tiny_db(root, tasks=(("dtd", "meta_train"), ("cub", "meta_test")), n_students=4)
    db = root / "db"
    rows = [{"key": k, "split": d["task"]["split"], "file": f"{k}.pt", "sha256": file_sha256(db / f"{k}.pt")}
            for k, d in tasks.items()]
    (db / "manifest.json").write_text(json.dumps({"tasks": rows}))
    return db


def test_record_digests_adds_them_once(tmp_path, capsys):
    db = _old_db(tmp_path)
    assert "proxy_digest" not in load_task_db(db / "dtd.pt")["teacher"]
    (tmp_path / "teachers" / "cub.pt").unlink()          # a task whose teacher is not at hand: reported, skipped
    with pytest.raises(SystemExit) as e:
        run_main(db_cli.main, ["--record-digests", str(db)], db_cli._parser())
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert f"{db / 'dtd.pt'}: teacher.proxy_digest" in out and "recorded" in out
    assert f"{db / 'cub.pt'}: skipped, teacher checkpoint not found" in out
    assert "1 task files given the teacher's proxy digest, 0 already had it, 1 skipped" in out
    d = load_task_db(db / "dtd.pt")
    assert d["teacher"]["proxy_digest"] == digest_by_hand(tmp_path / "teachers" / "dtd.pt")
    assert "proxy_digest" not in load_task_db(db / "cub.pt")["teacher"]
    # the manifest follows the rewritten file (the merge would take it for a hand edit otherwise)
    rows = {r["key"]: r for r in json.loads((db / "manifest.json").read_text())["tasks"]}
    assert rows["dtd"]["sha256"] == file_sha256(db / "dtd.pt")
    assert rows["cub"]["sha256"] == file_sha256(db / "cub.pt")
    # idempotent: nothing rewritten the second time
    before = {p.name: (p.stat().st_mtime_ns, file_sha256(p)) for p in db.iterdir()}
    rows = record_teacher_digests(db)
    assert [r["status"] for r in rows] == ["no teacher", "unchanged"]      # cub.pt, dtd.pt (file order)
    assert {p.name: (p.stat().st_mtime_ns, file_sha256(p)) for p in db.iterdir()} == before


def test_record_digests_refuses_another_digest_before_writing(tmp_path):
    db = _old_db(tmp_path)
    d = load_task_db(db / "cub.pt")
    d["teacher"]["proxy_digest"] = "0" * 64
    save_task_db(d, db / "cub.pt")
    before = {p.name: file_sha256(p) for p in db.iterdir()}
    with pytest.raises(DassError, match=r"cub.pt: records teacher.proxy_digest 0000000000000000\.\.\., its teacher"):
        record_teacher_digests(db)
    assert {p.name: file_sha256(p) for p in db.iterdir()} == before     # dtd.pt not rewritten either


def test_record_digests_of_a_missing_folder_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(db_cli.main, ["--record-digests", str(tmp_path / "nowhere")], db_cli._parser())
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: database folder not found: {tmp_path / 'nowhere'}"]


@pytest.mark.parametrize("bad", ["abc", 5, "G" * 64, "A" * 64])
def test_the_format_checks_a_recorded_digest(tmp_path, bad):
    d = write_tiny_db(tmp_path, tasks=(("dtd", "meta_test"),), n_students=3)["dtd"]
    d["teacher"]["proxy_digest"] = "ab" * 32
    validate_task_db(d)                           # a sha256 hex string: accepted
    d["teacher"]["proxy_digest"] = bad
    with pytest.raises(DassError, match="teacher.proxy_digest must be a sha256 of 64 lowercase hex digits"):
        validate_task_db(d, "t.pt")
