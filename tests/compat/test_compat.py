"""Compatibility with the original release: small files built with exactly the documented original
structures (docs/PAPER.md, "File structures of the original release") are converted and checked
against the values that produced them."""
import argparse
import json

import numpy as np
import pytest
import torch

from assets.original_release import orig_fields, original_checkpoint, student_db, teacher_db
from assets.tiny_db import tiny_teacher_state
from dass.compat import (import_release, read_correlation_samples, read_database_file, read_net_samples,
                         read_search_pool, read_teacher_checkpoint)
from dass.database.format import load_db
from dass.errors import DassError
from dass.space import Arch, SpaceConfig, build, decode_onehot, macs, params, sample_unique, teacher_arch
from dass.teacher import load_teacher

PAPER = SpaceConfig()  # the defaults are the paper profile
TASKS = {"tiny_imagenet-0": ("meta_train", 40), "tiny_imagenet-8": ("meta_valid", 40), "cub": ("meta_test", 200)}
N_STUDENTS = 6
N_NETS = 8


# ----------------------------------------------------------------------------------------------
# Builders of original-format files


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """An original release tree with three tasks, two teacher checkpoints, two search pools and the
    net-sample lists; returns ``(root, expected)``."""
    root = tmp_path_factory.mktemp("orig")
    pre = root / "preprocessed"
    rng = np.random.default_rng(0)
    expected = {"students": {}, "teacher_acc": {}, "teacher_sd": {}}
    for i, (key, (mode, _)) in enumerate(TASKS.items()):
        archs = sample_unique(PAPER, N_STUDENTS, rng, exclude={teacher_arch(PAPER)})
        d = student_db(archs, seed=i)
        t = teacher_db(60.0 + i, seed=100 + i)
        (pre / "ours" / mode / "teacher").mkdir(parents=True, exist_ok=True)
        torch.save(d, pre / "ours" / mode / f"{key}-logs_noise_actmap.pt")
        torch.save(t, pre / "ours" / mode / "teacher" / f"{key}-logs_noise_actmap.pt")
        expected["students"][key] = (archs, d, t)
    for key, acc1 in (("tiny_imagenet-0", torch.tensor(61.25)), ("cub", 55.5)):
        sd = tiny_teacher_state(PAPER, TASKS[key][1], seed=7)
        (root / "checkpoint" / "teacher" / key).mkdir(parents=True)
        torch.save(original_checkpoint(sd, acc1), root / "checkpoint" / "teacher" / key / "model_best.pth.tar")
        expected["teacher_sd"][key] = sd
    nets = sample_unique(PAPER, N_NETS, rng)
    (pre / "net_info").mkdir(parents=True)
    torch.save([[1000.0 + i, 10.0 + i, *orig_fields(a, pad=True), "extra"] for i, a in enumerate(nets)],
               pre / "net_info" / "net_samples.pt")
    torch.save([[i * 3, [1000.0 + i, 10.0 + i, *orig_fields(a, pad=False)]] for i, a in enumerate(nets[:3])],
               pre / "net_info" / "net_samples_50_for_correlation.pt")
    (pre / "search").mkdir()
    g = torch.Generator().manual_seed(5)
    pools = {"cub": (torch.randn(5, 256, 8, 8, generator=g), None),
             "omniglot": (torch.randn(3, 1, 256, 8, 8, generator=g), [7, 2, 4])}
    for key, (maps, idx) in pools.items():
        inp = {"arch_enc": torch.randn(len(maps), 181, generator=g)}
        if idx is not None:
            inp["net_index"] = idx
        torch.save({"pred_inp": inp, "noise_actmap_stage-4": list(maps)}, pre / "search" / f"{key}.pt")
    expected.update(nets=nets, pools=pools)
    return root, expected


@pytest.fixture(scope="module")
def imported(release, tmp_path_factory):
    """The release imported through the command line (``python -m dass.compat import``)."""
    root, _ = release
    out = tmp_path_factory.mktemp("db")
    assert run_cli(["import", "--src", str(root), "--out", str(out), "--num-classes", "omniglot=47"]) == 0
    return out


def hand_teacher_macs_params(k: int) -> tuple[int, int]:
    """ResNet42 at 64 px with ``k`` classes, counted by hand (docs/PAPER.md, "Space")."""
    stem = 64 * 64 * 9 * 3 * 32
    s1 = 10 * (64 * 64 * 9 * 32 * 32)
    s2 = 32 * 32 * 9 * 32 * 64 + 9 * (32 * 32 * 9 * 64 * 64)
    s3 = 16 * 16 * 9 * 64 * 128 + 9 * (16 * 16 * 9 * 128 * 128)
    s4 = 8 * 8 * 9 * 128 * 256 + 9 * (8 * 8 * 9 * 256 * 256)
    p = (27 * 32 + 64) + 10 * (9 * 32 * 32 + 64) + (9 * 32 * 64 + 128) + 9 * (9 * 64 * 64 + 128) \
        + (9 * 64 * 128 + 256) + 9 * (9 * 128 * 128 + 256) + (9 * 128 * 256 + 512) + 9 * (9 * 256 * 256 + 512)
    return stem + s1 + s2 + s3 + s4 + 256 * k, p + 256 * k + k


# ----------------------------------------------------------------------------------------------
# Teachers


def test_converted_teacher_gives_the_same_logits(release, imported):
    _, exp = release
    sd = exp["teacher_sd"]["tiny_imagenet-0"]
    ref = build(teacher_arch(PAPER), PAPER, 40).eval()
    ref.load_state_dict(sd)
    net, _, meta = load_teacher(imported / "teachers" / "tiny_imagenet-0" / "teacher.pt", PAPER, 40)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))
    assert meta["metrics"]["best_acc"] == 61.25       # the checkpoint's best_acc1 (a tensor there)
    assert meta["num_classes"] == 40 and meta["dataset"] == "tiny_imagenet-0"
    raw = torch.load(imported / "teachers" / "cub" / "teacher.pt", weights_only=True)
    assert raw["num_classes"] == 200 and raw["metrics"]["best_acc"] == 55.5 and raw["arch"] == {
        "depths": [5, 5, 5, 5], "widths": [[32] * 5, [64] * 5, [128] * 5, [256] * 5]}


def run_cli(argv) -> int:
    """``python -m dass.compat <argv>`` in this process; returns the exit code."""
    from dass.cli import run_main
    from dass.compat.__main__ import main, make_parser
    with pytest.raises(SystemExit) as e:
        run_main(main, argv, make_parser())
    return e.value.code


def test_teacher_subcommand_and_class_count(tmp_path):
    sd = tiny_teacher_state(PAPER, 47, seed=3)
    del sd["bn1.num_batches_tracked"]  # old checkpoints may lack step counters
    src = tmp_path / "dtd" / "model_best.pth.tar"
    src.parent.mkdir()
    torch.save(original_checkpoint(sd, 48.0), src)
    out = tmp_path / "teacher.pt"
    assert run_cli(["teacher", "--src", str(src), "--out", str(out)]) == 0
    _, loaded, meta = load_teacher(out, PAPER)
    assert meta["num_classes"] == 47 and meta["dataset"] == "dtd" and meta["metrics"]["best_acc"] == 48.0
    assert torch.equal(loaded["fc.weight"], sd["fc.weight"]) and loaded["bn1.num_batches_tracked"] == 0
    assert run_cli(["teacher", "--src", str(src), "--out", str(out), "--best-acc", "49.5", "--dataset", "d"]) == 0
    _, _, meta = load_teacher(out, PAPER)
    assert meta["metrics"]["best_acc"] == 49.5 and meta["dataset"] == "d"


def test_teacher_of_another_shape_is_refused(tmp_path):
    from dass.compat import convert_teacher
    small = SpaceConfig(name="small", stage_widths=[16, 32, 64, 128])
    sd = build(teacher_arch(small), small, 10).state_dict()
    torch.save(original_checkpoint(sd, 50.0), tmp_path / "m.pth.tar")
    with pytest.raises(DassError, match=r"'conv1.weight' has shape \(16, 3, 3, 3\).*needs \(32, 3, 3, 3\)"):
        convert_teacher(tmp_path / "m.pth.tar", tmp_path / "t.pt", PAPER)
    assert not (tmp_path / "t.pt").exists()


def test_pickle_that_could_run_code_is_refused(tmp_path):
    sd = tiny_teacher_state(PAPER, 40, seed=1)
    ck = original_checkpoint(sd, 60.0)
    ck["args"] = argparse.Namespace(lr=0.05)  # an object, not weights: unpickling would call code
    torch.save(ck, tmp_path / "model_best.pth.tar")
    with pytest.raises(DassError, match="could run code"):
        read_teacher_checkpoint(tmp_path / "model_best.pth.tar")
    db = student_db(sample_unique(PAPER, 2, np.random.default_rng(1)), seed=0)
    db["args"] = argparse.Namespace(seed=0)
    torch.save(db, tmp_path / "x-logs_noise_actmap.pt")
    with pytest.raises(DassError, match="could run code"):
        read_database_file(tmp_path / "x-logs_noise_actmap.pt", PAPER)


# ----------------------------------------------------------------------------------------------
# Database files


def test_every_record_keeps_its_values(release, imported):
    _, exp = release
    groups = load_db(imported)
    by_key = {d["task"]["key"]: d for ds in groups.values() for d in ds}
    assert set(by_key) == set(TASKS)
    for key, (archs, orig, tdb) in exp["students"].items():
        d = by_key[key]
        split, k = TASKS[key]
        assert d["task"]["split"] == split and d["task"]["num_classes"] == k and d["noise_seed"] == -1
        st = d["students"]
        assert [Arch.from_dict(a) for a in st["arch"]] == archs
        assert [decode_onehot(v, PAPER) for v in st["onehot"]] == archs
        assert st["onehot"].sum(1).tolist() == [4 + sum(a.depths) for a in archs]
        f32 = torch.float32
        assert torch.equal(st["best_acc"], torch.tensor([float(v) for v in orig["best_acc"]], dtype=f32))
        assert torch.equal(st["final_acc"], torch.tensor(orig["final_acc"], dtype=f32))
        assert torch.equal(st["final_loss"], torch.tensor(orig["final_loss"], dtype=f32))
        maps = torch.stack([m.reshape(256, 8, 8) for m in orig["noise_actmap_stage-4"]])
        assert st["fmap"].dtype == torch.float16 and torch.equal(st["fmap"], maps.half())
        assert st["orig_net_index"].tolist() == orig["net_index"]
        assert torch.equal(st["orig_arch_enc"], torch.stack(orig["arch_enc"]))
        assert st["seed"].tolist() == [-1] * N_STUDENTS and st["wall_s"].tolist() == [0.0] * N_STUDENTS
        assert st["macs"].tolist() == [macs(a, PAPER, k) for a in archs]
        assert st["params"].tolist() == [params(a, PAPER, k) for a in archs]
        te = d["teacher"]
        assert te["best_acc"] == tdb["best_acc"][0] and te["final_acc"] == tdb["final_acc"][0]
        assert torch.equal(te["fmap"], tdb["noise_actmap_stage-4"][0][0].half())
        assert (te["macs"], te["params"]) == hand_teacher_macs_params(k)
        assert "dataset_feats" not in d
    manifest = json.loads((imported / "manifest.json").read_text())
    assert {r["key"]: r["students"] for r in manifest["tasks"]} == {k: N_STUDENTS for k in TASKS}
    assert by_key["tiny_imagenet-0"]["task"]["teacher_ckpt"].endswith("teachers/tiny_imagenet-0/teacher.pt")
    assert by_key["tiny_imagenet-8"]["task"]["teacher_ckpt"] == ""


def _write(tmp_path, d, name="t-logs_noise_actmap.pt"):
    torch.save(d, tmp_path / name)
    return tmp_path / name


def test_lists_of_different_lengths_are_refused(tmp_path):
    d = student_db(sample_unique(PAPER, 3, np.random.default_rng(2)), seed=0)
    d["best_acc"] = d["best_acc"][:2]
    with pytest.raises(DassError, match=r"different lengths \(net_index 3, best_acc 2, final_acc 3"):
        read_database_file(_write(tmp_path, d), PAPER)
    del d["final_loss"]
    with pytest.raises(DassError, match="missing key 'final_loss'"):
        read_database_file(_write(tmp_path, d), PAPER)


def test_fields_outside_the_space_or_of_wrong_shape_are_refused(tmp_path):
    archs = sample_unique(PAPER, 2, np.random.default_rng(3))
    d = student_db(archs, seed=0)
    d["channel_widths"][1][3][0] = 100          # not a stage-4 width (128, 144, ..., 256)
    with pytest.raises(DassError, match=r"entry 1: .*not in space 'paper'.*width 100"):
        read_database_file(_write(tmp_path, d), PAPER)
    d = student_db(archs, seed=0)
    d["depth_config"][0] = [a + 1 if a < 5 else a for a in d["depth_config"][0]]
    d["channel_widths"][0] = [list(ws[:dep - 1]) for ws, dep in zip(archs[0].widths, d["depth_config"][0])]
    with pytest.raises(DassError, match="entry 0: stage 1 has depth"):
        read_database_file(_write(tmp_path, d), PAPER)
    d = student_db(archs, seed=0)
    d["noise_actmap_stage-4"][0] = torch.zeros(256, 4, 4)
    with pytest.raises(DassError, match=r"shape \(256, 4, 4\), expected C x 8 x 8"):
        read_database_file(_write(tmp_path, d), PAPER)


def test_narrow_maps_are_zero_padded_and_repeats_dropped(tmp_path):
    from dass.compat import task_from_records
    archs = sample_unique(PAPER, 3, np.random.default_rng(4))
    d = student_db(archs + [archs[0]], seed=0)   # the fourth student repeats the first
    d["noise_actmap_stage-4"][2] = torch.ones(200, 8, 8)
    recs = read_database_file(_write(tmp_path, d), PAPER)
    assert recs.fmap[2, :200].eq(1).all() and recs.fmap[2, 200:].eq(0).all()
    teacher = read_database_file(_write(tmp_path, teacher_db(70.0, 0), "teacher.pt"), PAPER, teacher=True)
    task, dropped = task_from_records(recs, teacher, "dtd", "meta_test", PAPER, 47)
    assert dropped == 1 and [Arch.from_dict(a) for a in task["students"]["arch"]] == archs
    assert task["students"]["best_acc"].tolist() == [31.25, 32.25, 33.25]


def test_teacher_file_of_another_architecture_is_refused(tmp_path):
    from dass.compat import task_from_records
    archs = sample_unique(PAPER, 2, np.random.default_rng(5))
    recs = read_database_file(_write(tmp_path, student_db(archs, 0)), PAPER)
    t = teacher_db(70.0, 0)
    t["depth_config"], t["channel_widths"] = [[4, 5, 5, 5]], [[[32] * 4, [64] * 5, [128] * 5, [256] * 5]]
    teacher = read_database_file(_write(tmp_path, t, "teacher.pt"), PAPER, teacher=True)
    with pytest.raises(DassError, match="not the teacher of space 'paper'"):
        task_from_records(recs, teacher, "dtd", "meta_test", PAPER, 47)


# ----------------------------------------------------------------------------------------------
# Search pools and net-sample lists


def test_search_pools_name_their_architectures(release, imported):
    _, exp = release
    nets = exp["nets"]
    for key, (maps, idx) in exp["pools"].items():
        c = torch.load(imported / "search" / f"{key}.pt", weights_only=True)
        want = idx if idx is not None else list(range(len(maps)))
        assert c["net_index"] == want
        assert [Arch.from_dict(a) for a in c["archs"]] == [nets[i] for i in want]
        assert torch.equal(c["fmap"], maps.reshape(-1, 256, 8, 8).half())
        k = 200 if key == "cub" else 47
        assert c["num_classes"] == k and c["macs"].tolist() == [macs(nets[i], PAPER, k) for i in want]
    cub = torch.load(imported / "search" / "cub.pt", weights_only=True)
    tdb = exp["students"]["cub"][2]   # the release's cub teacher file gives T and the support label
    assert cub["teacher"]["best_acc"] == tdb["best_acc"][0]
    assert torch.equal(cub["teacher"]["fmap"], tdb["noise_actmap_stage-4"][0][0].half())
    assert "teacher" not in torch.load(imported / "search" / "omniglot.pt", weights_only=True)


def test_net_sample_lists(release, imported):
    _, exp = release
    nets = exp["nets"]
    full = json.loads((imported / "net_info" / "net_samples.json").read_text())
    assert [Arch.from_dict(e["arch"]) for e in full] == nets
    assert [e["net_index"] for e in full] == list(range(N_NETS))
    assert [(e["orig_flops"], e["orig_params"]) for e in full] == [(1000.0 + i, 10.0 + i) for i in range(N_NETS)]
    corr = json.loads((imported / "net_info" / "net_samples_50_for_correlation.json").read_text())
    assert [(e["net_index"], e["orig_key"], Arch.from_dict(e["arch"])) for e in corr] == [
        (i, 3 * i, nets[i]) for i in range(3)]
    assert "orig_key" not in full[0]


def test_pool_index_beyond_the_net_samples_is_refused(release, tmp_path):
    root, _ = release
    samples = read_net_samples(root / "preprocessed" / "net_info" / "net_samples.pt", PAPER)
    assert len(read_correlation_samples(root / "preprocessed" / "net_info" / "net_samples_50_for_correlation.pt",
                                        PAPER)) == 3
    torch.save({"pred_inp": {"arch_enc": torch.zeros(1, 181), "net_index": [N_NETS]},
                "noise_actmap_stage-4": torch.zeros(1, 256, 8, 8)}, tmp_path / "p.pt")
    from dass.compat import candidates_from_pool
    with pytest.raises(DassError, match=f"net index {N_NETS}, net_samples.pt holds {N_NETS} nets"):
        candidates_from_pool(read_search_pool(tmp_path / "p.pt", PAPER), samples, PAPER, "p", 10)


# ----------------------------------------------------------------------------------------------
# Whole-release behaviour


def test_import_refuses_unknown_class_count_and_foreign_files(release, tmp_path):
    root, _ = release
    with pytest.raises(DassError, match=r"task omniglot: unknown class count.*--num-classes omniglot=N"):
        import_release(root, tmp_path / "a", PAPER)
    assert not (tmp_path / "a").exists()  # refused before anything was written
    (tmp_path / "b").mkdir()
    torch.save({}, tmp_path / "b" / "other.pt")
    with pytest.raises(DassError, match="already holds other task files"):
        import_release(root, tmp_path / "b", PAPER, {"omniglot": 47})


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert run_cli(["import", "--src", str(tmp_path), "--out", str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no original files found" in err and len(err.strip().splitlines()) == 1
    assert run_cli(["import", "--src", str(tmp_path), "--out", str(tmp_path / "db"), "--num-classes", "x=0"]) == 2
    assert "--num-classes expects KEY=N" in capsys.readouterr().err


@pytest.mark.slow
def test_meta_training_runs_on_the_imported_database(imported, tmp_path):
    from dass.predictor import MetaTrainConfig, run
    cfg = MetaTrainConfig(db=str(imported), run_dir=str(tmp_path / "run"), episodes=2, eval_every=2, n_query=4,
                          device="cpu", progress=False)
    metrics = run(cfg)
    assert metrics["episodes"] == 2 and (tmp_path / "run" / "best.pt").is_file()
    assert set(metrics["meta_test"]) == {"cub"}


def test_original_checkpoint_with_model_name_loads_directly(tmp_path):
    """The original saves 'arch': 'resnet42' beside a module.-prefixed state dict; load_teacher takes it."""
    import torch
    from dass.space import SpaceConfig, build, teacher_arch
    from dass.teacher import load_teacher
    space = SpaceConfig()
    net = build(teacher_arch(space), space, 12).eval()
    path = tmp_path / "model_best.pth.tar"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}, "arch": "resnet42",
                "epoch": 179}, path)
    loaded, _, meta = load_teacher(path, space, 12)
    x = torch.randn(2, 3, 64, 64)
    assert meta["num_classes"] == 12
    assert torch.equal(loaded.eval()(x), net(x))


def test_import_checks_everything_before_it_writes(release, tmp_path, capsys):
    """A class count that contradicts a teacher is found after the teachers were read: nothing written."""
    root, _ = release
    out = tmp_path / "db"
    assert run_cli(["import", "--src", str(root), "--out", str(out), "--num-classes", "omniglot=47", "cub=7"]) == 2
    assert "cub" in capsys.readouterr().err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
    assert run_cli(["import", "--src", str(root), "--out", str(out), "--num-classes", "k=100000000000000000000000"]) == 2
    assert "N in [1, 1000000]" in capsys.readouterr().err
