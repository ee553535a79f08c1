"""The export stage (``python -m dass.export --config configs/export/cpu.yaml run=<KD run folder>``;
:func:`run` is its public entry): one KD-trained student as files that run without this package.

Reads a run folder of ``python -m dass.kd`` (``identity.json`` of kind ``kd``, ``config.yaml``,
``seed<k>/best.pt`` and ``metrics.json``) and writes into ``out`` (default ``<run>/export``):

* ``student.ts``: the student traced with TorchScript (``torch.jit.load`` with plain torch),
* ``student.onnx``: ONNX at opset ``opset`` (default 17), input ``input`` (N x 3 x S x S float32,
  dynamic batch), output ``logits``,
* ``student_state_dict.pt`` + ``arch.json``: the weights and the architecture for this package,
* ``model.json``: input size, channels, normalisation (``x = (pixels / 255 - mean) / std``, per
  channel, RGB, after resizing the image to S x S), class names (glyph code points, image-folder
  class names, else the label indices as strings), the accuracy of every seed, the checks below,
* ``MODEL_CARD.md``.

Every written program is checked on the dataset's test images (``check_images``, 0 = all) against
the package's own network: the max abs logit difference of TorchScript and of onnxruntime are
reported in ``model.json`` and in the printed summary; one above ``tolerance`` is an error.
"""
from __future__ import annotations

import io
import json
import logging
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import config as cfgmod
from ..data.folder import class_names as folder_class_names
from ..data.loader import DeviceLoader, LoaderConfig
from ..data.registry import class_list, load_dataset
from ..data.subset import glyph_code_points
from ..errors import DassError
from ..io import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text, read_json, safe_torch_load
from ..kd.config import KDRunConfig
from ..space import Arch, SpaceConfig, build, macs, params, teacher_arch
from ..teacher.checkpoint import load_teacher
from ..train.recipe import KDRecipe
from .config import ExportConfig

log = logging.getLogger("dass.export")
MODEL_FORMAT = "dass-export-v1"
LATENCY_RUNS = 30


def _finished_seeds(folder: Path) -> dict:
    seeds = {}
    for m_path in sorted(folder.glob("seed*/metrics.json")):
        if not (m_path.parent / "best.pt").is_file():
            continue
        m = read_json(m_path)
        seeds[int(m["seed"])] = {"best_acc": m["best_acc"], "final_acc": m["final_acc"],
                                 "best_epoch": m.get("best_epoch"), "dir": m_path.parent, "metrics": m}
    if not seeds:
        raise DassError(f"{folder}: no finished seed (seed<k>/metrics.json with best.pt); let the KD run finish first")
    return dict(sorted(seeds.items()))


def _kind(folder: Path) -> str | None:
    f = folder / "identity.json"
    if not f.is_file():
        return None
    ident = read_json(f)
    return ident.get("kind") if isinstance(ident, dict) else None


def _pipeline_pick(run: Path, pick: int) -> tuple[Path, Path]:
    """(pipeline run folder, pick folder) of ``run``: a pipeline run (its pick of rank ``pick``) or
    one of its pick folders ``<pipeline>/kd/<rank>-<arch>``."""
    if _kind(run) == "pipeline":
        found = sorted((run / "kd").glob(f"{pick}-*")) if (run / "kd").is_dir() else []
        if not found:
            raise DassError(f"{run}: pipeline run without a KD-trained pick of rank {pick} (kd/{pick}-<arch>)")
        return run, found[0]
    return run.parent.parent, run


def read_kd_run(run, pick: int = 1) -> dict:
    """What an export needs from a KD run: a folder of ``python -m dass.kd`` (``identity.json`` of
    kind ``kd``, ``config.yaml``, ``seed<k>/``), a pipeline run (its pick of rank ``pick``) or one
    of a pipeline's pick folders (``<pipeline>/kd/<rank>-<arch>``). Returns ``folder`` (where the
    seeds are), ``dataset``, ``data_root``, ``teacher``, ``mean``/``std`` (of the KD recipe),
    ``arch``, ``space``, ``seeds`` ({seed: metrics}) and ``reproduce`` (commands). Anything else
    is a DassError."""
    run = Path(run)
    if not run.is_dir():
        raise DassError(f"KD run folder not found: {run}")
    kind = _kind(run)
    if kind == "kd" and (run / "config.yaml").is_file():
        ident = read_json(run / "identity.json")
        try:
            arch = Arch.from_dict(ident["inputs"]["arch"])
            space = cfgmod.from_dict(SpaceConfig, ident["inputs"]["space"], str(run / "identity.json"))
        except (KeyError, TypeError) as e:
            raise DassError(f"{run / 'identity.json'}: no student architecture or space recorded ({e})") from None
        kd = cfgmod.load(KDRunConfig, run / "config.yaml")
        return {"folder": run, "dataset": kd.dataset, "data_root": kd.data_root, "teacher": kd.teacher,
                "mean": kd.kd_recipe.mean, "std": kd.kd_recipe.std, "arch": arch, "space": space,
                "seeds": _finished_seeds(run), "reproduce": [f"python -m dass.kd --config {run / 'config.yaml'}"]}
    pipe, folder = _pipeline_pick(run, pick)
    if kind not in (None, "pipeline") or _kind(pipe) != "pipeline" or folder.parent.name != "kd":
        raise DassError(f"{run}: not a KD run folder (python -m dass.kd writes identity.json of kind 'kd' and "
                        "config.yaml) nor a pipeline run or one of its kd/<rank>-<arch> folders")
    seeds = _finished_seeds(folder)
    pcfg = cfgmod.read_yaml(pipe / "config.yaml")
    recipe = cfgmod.from_dict(KDRecipe, pcfg.get("kd_recipe") or {}, str(pipe / "config.yaml"), "kd_recipe.")
    first = next(iter(seeds.values()))["metrics"]
    teacher = str(first.get("teacher") or pcfg.get("teacher") or "")
    if not Path(teacher).is_file():
        raise DassError(f"{folder}: its teacher checkpoint {teacher!r} is gone; the student's space is read from it")
    space = load_teacher(teacher)[2]["space"]
    top = pipe / "search" / "top.json"
    entries = read_json(top).get("top", []) if top.is_file() else []
    pred = next((e.get("pred_acc") for e in entries if isinstance(e, dict) and e.get("arch") == first["arch"]), None)
    return {"pred_acc": pred, "folder": folder, "dataset": str(pcfg.get("dataset") or first["dataset"]),
            "data_root": str(pcfg.get("data_root") or "data"), "teacher": teacher, "mean": recipe.mean,
            "std": recipe.std, "arch": Arch.from_dict(first["arch"]), "space": space, "seeds": seeds,
            "reproduce": [f"python -m dass.pipeline --config {pipe / 'config.yaml'}"]}


def class_names(dataset: str, root, num_classes: int) -> tuple[list[str], str]:
    """The name of each class of ``dataset`` in label order and where the names come from: a glyph
    class's code point, an image folder's sub-folder name, an npy folder's ``classes.json`` (a list of
    names in label order, as :func:`dass.api.find_student` writes it), else the label index as a string."""
    if dataset.startswith("folder:"):
        names = folder_class_names(dataset[len("folder:"):])
        if len(names) == num_classes:
            return names, "folder"
    listed = Path(dataset[len("npy:"):]) / "classes.json" if dataset.startswith("npy:") else None
    if listed is not None and listed.is_file():
        names = read_json(listed)
        if isinstance(names, list) and len(names) == num_classes and all(isinstance(n, str) for n in names):
            return names, "classes.json"
    pairs = class_list(dataset, root)
    cache: dict = {}
    names, kinds = [], set()
    for src, i in pairs:
        if src not in cache:
            cache[src] = None if src.startswith(("folder:", "npy:")) else glyph_code_points(root, src)
        cps = cache[src]
        if cps is not None and i < len(cps):
            names.append(cps[i])
            kinds.add("code point")
        else:
            names.append(str(i) if src == dataset else f"{src}[{i}]")
            kinds.add("index")
    if len(names) != num_classes:
        return [str(i) for i in range(num_classes)], "index"
    return names, "code point" if kinds == {"code point"} else "index"


def _channels(value) -> list[float]:
    v = [float(x) for x in (value if isinstance(value, (list, tuple)) else [value])]
    return v * 3 if len(v) == 1 else v


def _program_bytes(save, *args) -> bytes:
    buf = io.BytesIO()
    save(*args, buf)
    return buf.getvalue()


def _onnx_bytes(net, example, opset: int) -> bytes:
    try:
        import onnx  # noqa: F401  # lazy: optional dependency (pip install -e .[export])
    except ImportError:
        raise DassError("format onnx needs the packages onnx and onnxruntime (pip install -e .[export])") from None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), buf, opset_version=opset, dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return buf.getvalue()


def _ort_session(data: bytes):
    try:
        import onnxruntime as ort  # lazy: optional dependency (pip install -e .[export])
    except ImportError:
        raise DassError("format onnx needs the packages onnx and onnxruntime (pip install -e .[export])") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _latency_ms(program, size: int) -> float:
    """Median wall milliseconds of one forward of one image (CPU, the current torch thread count)."""
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for _ in range(3):
            program(x)
        times = []
        for _ in range(LATENCY_RUNS):
            t = time.perf_counter()
            program(x)
            times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def run(cfg: ExportConfig) -> dict:
    """Export the student of the KD run ``cfg.run``; returns the summary (paths, max abs differences,
    accuracies) that it also prints as one JSON line."""
    cfg.check()
    info = read_kd_run(cfg.run, cfg.pick)
    arch, space, seeds, dataset = info["arch"], info["space"], info["seeds"], info["dataset"]
    folder = info["folder"]
    if cfg.seed and cfg.seed not in seeds:
        raise DassError(f"{folder}: no finished seed {cfg.seed} (finished: {', '.join(map(str, seeds))})")
    seed = cfg.seed or max(seeds, key=lambda s: (seeds[s]["best_acc"] or -1.0, -s))
    ck = safe_torch_load(seeds[seed]["dir"] / "best.pt")
    if not isinstance(ck, dict) or not isinstance(ck.get("state_dict"), dict) or "fc.weight" not in ck["state_dict"]:
        raise DassError(f"{seeds[seed]['dir'] / 'best.pt'}: not a student checkpoint of python -m dass.kd")
    sd = ck["state_dict"]
    num_classes = int(sd["fc.weight"].shape[0])
    net = build(arch, space, num_classes)
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise DassError(f"{seeds[seed]['dir'] / 'best.pt'}: weights do not fit student {arch}: "
                        f"{str(e).splitlines()[-1].strip()}") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)

    data_root = cfg.data_root or info["data_root"]
    size = space.image_size
    test = load_dataset(dataset, data_root, "test", size if dataset.startswith("folder:") else None)
    if test.num_classes != num_classes:
        raise DassError(f"dataset {dataset} has {test.num_classes} classes, the student {num_classes}")
    mean, std = _channels(info["mean"]), _channels(info["std"])
    loader = DeviceLoader(test, LoaderConfig(256, train=False, image_size=size, pad=0, flip=False, mean=mean,
                                             std=std), device="cpu")
    names, names_from = class_names(dataset, data_root, num_classes)

    out = Path(cfg.out or folder / "export")
    example = torch.zeros(1, 3, size, size)
    files, programs, blobs = {}, {}, {}   # the programs are written only once they passed the check
    if "torchscript" in cfg.format:
        with warnings.catch_warnings():  # the tracer's shape warnings and torch.jit's deprecation notice
            warnings.simplefilter("ignore")
            # no check_trace: it re-traces and compares on the zero example, with its warnings ignored
            # here; the saved program is checked below against the network on the test images
            traced = torch.jit.trace(net, example, check_trace=False)
            blobs["student.ts"] = _program_bytes(torch.jit.save, traced)
            loaded = torch.jit.load(io.BytesIO(blobs["student.ts"]))
        files["torchscript"] = "student.ts"
        programs["torchscript"] = lambda x: loaded(x).numpy()
    if "onnx" in cfg.format:
        blobs["student.onnx"] = _onnx_bytes(net, example, cfg.opset)
        files["onnx"] = "student.onnx"
        session = _ort_session(blobs["student.onnx"])
        programs["onnx"] = lambda x: session.run(None, {"input": x.numpy()})[0]

    # the check: every program against the package's network on the test images
    limit = cfg.check_images or len(test)
    diffs = {k: 0.0 for k in programs}
    correct = {k: 0 for k in ["torch", *programs]}
    seen = 0
    with torch.no_grad():
        for x, y in loader:
            if seen >= limit:
                break
            x, y = x[:limit - seen], y[:limit - seen]
            ref = net(x)
            correct["torch"] += int((ref.argmax(1) == y).sum())
            for k, prog in programs.items():
                got = prog(x)
                diffs[k] = max(diffs[k], float(np.abs(got - ref.numpy()).max()))
                correct[k] += int((torch.from_numpy(np.asarray(got)).argmax(1) == y).sum())
            seen += len(y)
    acc = {k: 100.0 * v / seen for k, v in correct.items()}
    for k, d in diffs.items():
        if not d <= cfg.tolerance:
            raise DassError(f"{files[k]}: max abs logit difference {d:.3g} to torch on {seen} test images "
                            f"exceeds tolerance {cfg.tolerance:g}")
    latency = _latency_ms(net, size)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in blobs.items():
        atomic_write_bytes(out / name, data)
    if "state_dict" in cfg.format:
        atomic_torch_save(sd, out / "student_state_dict.pt")
        atomic_write_json(out / "arch.json", {"format": MODEL_FORMAT, "arch": arch.to_dict(),
                                              "space": cfgmod.to_dict(space), "num_classes": num_classes})
        files["state_dict"] = "student_state_dict.pt"
        files["arch"] = "arch.json"

    teacher = _teacher_facts(info["teacher"], space, num_classes)
    model = {
        "format": MODEL_FORMAT,
        "input": {"name": "input", "layout": "NCHW", "dtype": "float32", "size": size, "channels": 3,
                  "colour": "RGB"},
        "input_size": size, "channels": 3,
        "preprocess": f"resize the RGB image to {size}x{size} (bilinear), x = (pixels / 255 - mean) / std per channel",
        "mean": mean, "std": std,
        "output": {"name": "logits", "shape": ["N", num_classes]},
        "num_classes": num_classes, "classes": names, "classes_from": names_from,
        "dataset": dataset, "arch": arch.to_dict(), "arch_key": arch.key(), "space": space.name,
        "macs": macs(arch, space, num_classes), "params": params(arch, space, num_classes),
        "pred_acc": info.get("pred_acc"),
        "exported_seed": seed, "exported_test_acc": ck.get("test_acc"),
        "seeds": {str(s): {"best_acc": v["best_acc"], "final_acc": v["final_acc"], "best_epoch": v["best_epoch"]}
                  for s, v in seeds.items()},
        "teacher": teacher, "files": files, "onnx_opset": cfg.opset if "onnx" in files else None,
        "check": {"images": seen, "max_abs_diff": diffs, "top1": acc, "tolerance": cfg.tolerance},
        "latency_ms": {"value": latency, "batch": 1, "device": "cpu", "threads": torch.get_num_threads(),
                       "runs": LATENCY_RUNS, "statistic": "median", "machine": platform.processor() or platform.machine(),
                       "torch": torch.__version__},
        "run": str(folder),
        "reproduce": [*info["reproduce"], f"python -m dass.export --config configs/export/cpu.yaml run={folder}"
                      + (f" seed={cfg.seed}" if cfg.seed else "")],
    }
    atomic_write_json(out / "model.json", model)
    atomic_write_text(out / "MODEL_CARD.md", model_card(model))
    summary = {"out": str(out), "files": sorted([*files.values(), "model.json", "MODEL_CARD.md"]), "seed": seed,
               "images": seen, "max_abs_diff": diffs, "top1": acc, "onnx_opset": model["onnx_opset"]}
    log.info("exported student %s (seed %d) to %s", arch, seed, out)
    print(json.dumps(summary))
    return summary


def _teacher_facts(path: str, space: SpaceConfig, num_classes: int) -> dict:
    """What is known of the KD run's teacher: accuracy (from its checkpoint, when it is still there
    and records it), MACs and params (from the space)."""
    t = teacher_arch(space)
    facts = {"path": path, "macs": macs(t, space, num_classes), "params": params(t, space, num_classes),
             "best_acc": None, "final_acc": None}
    if path and Path(path).is_file():
        try:
            metrics = load_teacher(path, space=space)[2].get("metrics") or {}
        except DassError:
            metrics = {}
        facts["best_acc"], facts["final_acc"] = metrics.get("best_acc"), metrics.get("final_acc")
    return facts


def _fmt(v, spec: str = ".2f") -> str:
    return "unknown" if v is None else format(v, spec)


def model_card(m: dict) -> str:
    """``MODEL_CARD.md`` of an export, from its ``model.json`` content."""
    t = m["teacher"]
    seeds = "\n".join(f"| {s} | {_fmt(v['best_acc'])} | {_fmt(v['final_acc'])} |" for s, v in m["seeds"].items())
    classes = ", ".join(m["classes"][:20]) + (f", ... ({m['num_classes']} in all)" if m["num_classes"] > 20 else "")
    diffs = ", ".join(f"{k} {v:.2e}" for k, v in m["check"]["max_abs_diff"].items()) or "no program exported"
    lat = m["latency_ms"]
    return f"""# Model card: DaSS student {m['arch_key']} on {m['dataset']}

- **Dataset**: `{m['dataset']}`, {m['num_classes']} classes ({m['classes_from']}): {classes}
- **Teacher**: `{t['path']}`, test top-1 best {_fmt(t['best_acc'])} % / final {_fmt(t['final_acc'])} %,
  {t['macs']:,} MACs, {t['params']:,} params
- **Student**: depths {m['arch']['depths']}, widths {m['arch']['widths']} (space `{m['space']}`),
  {m['macs']:,} MACs, {m['params']:,} params
- **Input**: {m['channels']} x {m['input_size']} x {m['input_size']} RGB, {m['preprocess']};
  mean {m['mean']}, std {m['std']}
- **Predicted accuracy** (the search's predictor): {_fmt(m['pred_acc'])} %
- **Exported**: seed {m['exported_seed']} (its best epoch, test top-1 {_fmt(m['exported_test_acc'])} %);
  files {', '.join(m['files'].values())}; ONNX opset {m['onnx_opset'] if m['onnx_opset'] else 'n/a'}
- **Check** on {m['check']['images']} test images, max abs logit difference to torch: {diffs}
- **Latency** (measured at export): {lat['value']:.3f} ms per image, batch {lat['batch']}, {lat['device']},
  {lat['threads']} torch thread(s), median of {lat['runs']} runs, torch {lat['torch']}

## Test accuracy per seed (top-1 %, KD)

| seed | best | final |
|---|---|---|
{seeds}

## Reproduce

```
{chr(10).join(m['reproduce'])}
```
"""
