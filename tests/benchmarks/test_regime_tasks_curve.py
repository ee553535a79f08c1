"""bench/regime_tasks_curve.py on tiny databases: each row's meta-valid Spearman equals that of a
predictor meta-trained for 1 episode at a vanishing learning rate, without adaptation (its output is its prior alone: trees,
or linear with the teacher's accuracy and its interactions) on a database holding exactly those meta-train tasks; draws
keep every other task and stay in the pool."""
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from assets.tiny_db import write_tiny_db
from dass.database.format import write_union

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import regime_tasks_curve as curve  # noqa: E402

DESIGN = {"_base_": str(REPO / "configs" / "predictor" / "paper.yaml"), "target": "standardized",
          "cost_prior": True, "prior_model": "trees", "prior_rounds": 15, "prior_depth": 2, "prior_onehot": True,
          "cost_features": True, "input_type": "A", "episodes": 1, "outer_lr": 1e-12, "inner_steps": 0, "eval_at_start": True,
          "meta_batch": 0, "progress": False, "device": "cpu"}
LINEAR = {**DESIGN, "prior_model": "linear", "prior_onehot": False, "prior_interactions": True,
          "task_stats": ["teacher_acc"]}


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    root = tmp_path_factory.mktemp("curve")
    write_tiny_db(root / "a", tasks=(("x1", "meta_train"), ("x2", "meta_train"), ("v1", "meta_valid")), n_students=30)
    write_tiny_db(root / "b", tasks=(("z1", "meta_train"), ("z2", "meta_train"), ("z3", "meta_train"),
                                     ("w1", "meta_valid"), ("w2", "meta_valid")), n_students=30)
    write_union(root / "u", [root / "a" / "db", root / "b" / "db"])
    for name, design in (("design", DESIGN), ("linear", LINEAR)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(design))
    return root, root / "design.yaml"


def _meta_valid(root: Path, cfg: Path, files: list[Path], name: str) -> dict[str, float]:
    """Per meta-valid task Spearman of a prior-only run on a database of exactly ``files``."""
    from dass.predictor.meta_train import run
    from dass import config as cfgmod
    from dass.predictor.config import MetaTrainConfig
    db = root / name / "db"
    db.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, db / f.name)
    m = run(cfgmod.load(MetaTrainConfig, cfg, [f"db={db}", f"run_dir={root / name / 'run'}"]))
    return {k: v["spearman"] for k, v in m["meta_valid"].items()}


@pytest.mark.slow
@pytest.mark.parametrize("design", ["design", "linear"])
def test_rows_equal_a_prior_only_predictor(dbs, tmp_path, capsys, design):
    root, _ = dbs
    cfg = root / f"{design}.yaml"
    out = tmp_path / "rows.json"
    assert curve.main(["--db", str(root / "u"), "--grow", str(root / "b" / "db"), "--counts", "0", "3",
                       "--draws", "4", "--config", str(cfg), "--json", str(out)]) == 0
    rows = {r["count"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows[0]["draws"] == 1 and rows[3]["draws"] == 1   # nothing to draw at none or all of the pool
    valid = [root / "a" / "db" / "v1.pt", root / "b" / "db" / "w1.pt", root / "b" / "db" / "w2.pt"]
    none = _meta_valid(root, cfg, [root / "a" / "db" / "x1.pt", root / "a" / "db" / "x2.pt", *valid], f"{design}-none")
    full = _meta_valid(root, cfg, [*(root / "a" / "db").glob("x*.pt"), *(root / "b" / "db").glob("z*.pt"), *valid],
                       f"{design}-full")
    for row, ref in ((rows[0], none), (rows[3], full)):
        assert row["valid_grown"] == pytest.approx((ref["w1"] + ref["w2"]) / 2, abs=1e-6)
        assert row["valid_others"] == pytest.approx(ref["v1"], abs=1e-6)
    assert "| 0 | 1 |" in capsys.readouterr().out


def test_a_count_beyond_the_pool_is_refused(dbs):
    root, cfg = dbs
    with pytest.raises(SystemExit, match="has 3 meta-train tasks"):
        curve.main(["--db", str(root / "u"), "--grow", str(root / "b" / "db"), "--counts", "4", "--config", str(cfg)])


def test_a_missing_database_is_one_error_line(dbs, tmp_path, capsys):
    root, cfg = dbs
    missing = tmp_path / "nowhere"
    assert curve.main(["--db", str(root / "u"), "--grow", str(missing), "--counts", "0", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and err.count("\n") == 1
