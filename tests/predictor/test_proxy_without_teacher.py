"""Proxy inputs of a task whose teacher checkpoint is not at hand: read from a proxy cache by the
teacher's digest its task file records (``teacher.proxy_digest``), the same features as computed
with the teacher; a proxy the cache lacks is a one-line error naming the task and the proxy."""
import shutil

import pytest
import torch

from assets.tiny_db import write_tiny_db
from dass import runid
from dass.database.format import load_task_db
from dass.database.merge import record_teacher_digests
from dass.errors import DassError
from dass.predictor import meta_train, proxy_inputs
from dass.predictor.config import MetaTrainConfig
from dass.predictor.data import TaskData
from dass.proxies.cache import ProxyCache

NAMES = ["naswot", "synflow"]


@pytest.fixture
def task_db(tmp_path):
    """A meta-train task with readable images, its teacher and its digest recorded: (root, file)."""
    write_tiny_db(tmp_path, data_root=tmp_path / "data", tasks=(("dtd", "meta_train"),), n_students=5)
    record_teacher_digests(tmp_path / "db")
    return tmp_path, tmp_path / "db" / "dtd.pt"


def _task(path) -> TaskData:
    return TaskData.from_db(load_task_db(path))


def test_without_the_teacher_a_warm_cache_gives_the_same_features(task_db):
    root, path = task_db
    t = _task(path)
    assert len(t.teacher_digest) == 64
    proxy_inputs.attach([t], NAMES, str(root / "data"), 8, 0, root / "cache")     # computed with the teacher
    with_teacher = t.proxy.clone()
    assert with_teacher.shape == (5, 2) and bool(torch.isfinite(with_teacher).all())
    shutil.move(root / "teachers" / "dtd.pt", root / "elsewhere.pt")
    t = _task(path)
    cache = ProxyCache(None, read_only=[root / "cache"])                      # only read, never written
    proxy_inputs.attach([t], NAMES, str(root / "data"), 8, 0, cache)
    assert torch.equal(t.proxy, with_teacher)
    assert (cache.hits, cache.misses) == (4, 0)       # students and teacher, of each proxy
    # a teacher file that cannot be read: the same, by the digest
    (root / "teachers" / "dtd.pt").write_bytes(b"not a checkpoint")
    t = _task(path)
    proxy_inputs.attach([t], NAMES, str(root / "data"), 8, 0, cache)
    assert torch.equal(t.proxy, with_teacher)


def test_without_the_teacher_a_cold_cache_is_one_error_line(task_db):
    root, path = task_db
    (root / "teachers" / "dtd.pt").unlink()
    t = _task(path)
    with pytest.raises(DassError) as e:
        proxy_inputs.attach([t], NAMES, str(root / "data"), 8, 0, root / "empty")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("task dtd: proxy naswot ")
    assert "not in the proxy cache" in msg and f"teacher checkpoint, expected at '{root / 'teachers' / 'dtd.pt'}'" in msg
    assert t.proxy is None and not (root / "empty").exists()
    # a task file without the digest: the checkpoint is needed, as before
    d = load_task_db(path)
    del d["teacher"]["proxy_digest"]
    with pytest.raises(DassError, match="task dtd: proxy inputs need its teacher checkpoint, not found"):
        proxy_inputs.attach([TaskData.from_db(d)], NAMES, str(root / "data"), 8, 0, root / "empty")


def test_meta_training_reads_its_read_only_caches_outside_the_identity(tmp_path, monkeypatch):
    write_tiny_db(tmp_path, tasks=(("dtd", "meta_train"), ("cub", "meta_valid")), n_students=3)
    cfg = MetaTrainConfig(db=str(tmp_path / "db"), run_dir=str(tmp_path / "run"), proxies=["naswot"],
                          proxy_read_only_caches=["shipped", "other"])
    seen = {}

    class Stop(Exception):
        pass

    def fake_attach(tasks, names, data_root, batch_size, seed, cache, *rest):
        seen["cache"] = cache
        raise Stop

    monkeypatch.setattr(proxy_inputs, "attach", fake_attach)
    with pytest.raises(Stop):
        meta_train.run(cfg)
    assert [str(f) for f in seen["cache"].read_only] == ["shipped", "other"]
    assert str(seen["cache"].folder) == str(tmp_path / "run" / "proxy_cache")
    plain = MetaTrainConfig(db=cfg.db, run_dir=cfg.run_dir, proxies=["naswot"])
    db = {"dtd.pt": "e" * 64}
    assert runid.identity("predictor", cfg, db=db)["hash"] == runid.identity("predictor", plain, db=db)["hash"]
