"""The pipeline's report folder: ``report.md``, ``picks.csv``, ``stages.csv`` and two plots.

* ``plots/candidates.png``: every scored candidate on the MACs / parameters plane, coloured by its
  predicted accuracy (by its rank score when the predictor gives no accuracy), the budget as dashed
  lines, the teacher and the KD-trained picks marked; with a latency budget, a second panel: predicted
  latency against predicted accuracy (or score), the budget and the picks at their measured latency.
* ``plots/predicted_vs_measured.png``: for the trained picks, predicted accuracy (or score) against
  the measured KD accuracy (best test top-1, the label the predictor is trained on; mean over seeds),
  with the diagonal when both are accuracies.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..evaluation.plots import new_figure, save_figure
from ..io import atomic_write_text, write_csv
from ..space import Arch

PICK_FIELDS = ("rank", "arch", "macs", "params", "macs_pct_teacher", "params_pct_teacher", "latency_ms",
               "latency_ms_measured", "score", "pred_acc", "best_acc", "final_acc", "final_acc_std", "kd_seconds",
               "within_budget", "run_dir")
# with scratch_baseline: the same architecture trained from scratch with the same number of steps
SCRATCH_FIELDS = ("scratch_best_acc", "scratch_final_acc", "scratch_final_acc_std")


def _num(v) -> float:
    return math.nan if v in (None, "") else float(v)


def read_candidates(scores_csv) -> dict[str, np.ndarray]:
    """``macs``, ``params``, ``score``, ``pred_acc`` and ``latency_ms`` (predicted; NaN where empty or
    absent) of every scored candidate."""
    with open(scores_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([_num(r.get(k)) for r in rows], dtype=np.float64)
            for k in ("macs", "params", "score", "pred_acc", "latency_ms")}


def within(row: dict, budget: dict, tolerance: float = 0.0) -> bool:
    """Within the MACs / parameter budgets and, with a latency budget, measured within it x (1 + tolerance)."""
    ms, limit = row.get("latency_ms_measured"), budget.get("max_latency_ms")
    return ((budget["max_macs"] is None or row["macs"] <= budget["max_macs"])
            and (budget["max_params"] is None or row["params"] <= budget["max_params"])
            and (limit is None or (ms is not None and ms <= limit * (1 + tolerance))))


def pick_rows(result: dict) -> list[dict]:
    t = result["teacher"]
    measured = {p["rank"]: p for p in result["kd"]["picks"]}
    tolerance = (result["search"].get("latency") or {}).get("tolerance", 0.0)
    rows = []
    for p in result["search"]["top"]:
        m = measured[p["rank"]]
        rows.append({"rank": p["rank"], "arch": str(Arch.from_dict(p["arch"])), "macs": p["macs"],
                     "params": p["params"], "macs_pct_teacher": round(100.0 * p["macs"] / t["macs"], 2),
                     "params_pct_teacher": round(100.0 * p["params"] / t["params"], 2),
                     "latency_ms": p.get("latency_ms"), "latency_ms_measured": p.get("latency_ms_measured"),
                     "score": p["score"], "pred_acc": p["pred_acc"], "best_acc": m["best_acc"],
                     "final_acc": m["final_acc"], "final_acc_std": m["final_acc_std"], "kd_seconds": m["wall_s"],
                     "within_budget": within(p, result["budget"], tolerance), "run_dir": m["run_dir"],
                     **{k: m[k] for k in SCRATCH_FIELDS if k in m}})
    return rows


def _fmt(v, spec=".2f", empty="–") -> str:
    return empty if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _limit(v, of) -> str:
    return "none" if v is None else f"{v:,.0f} ({100.0 * v / of:.1f} % of the teacher's)"


def _latency_limit(budget: dict, latency: dict | None) -> str:
    if budget.get("max_latency_ms") is None or not latency:
        return ""
    replaced = latency.get("replaced_ranks") or []
    return (f"; latency {budget['max_latency_ms']:g} ms ({latency['setting']}; candidates filtered by predicted "
            f"latency, picks re-measured, tolerance {100 * latency['tolerance']:g} %"
            + (f"; candidates of rank {', '.join(map(str, replaced))} measured over it and replaced)" if replaced
               else ")"))


def markdown(result: dict, picks: list[dict]) -> str:
    t, b, s = result["teacher"], result["budget"], result["search"]
    has_acc = any(p["pred_acc"] is not None for p in picks)
    scratch = bool(picks) and all("scratch_final_acc" in p for p in picks)
    lines = [f"# Student search report: {result['dataset']}", "",
             f"- **Dataset**: `{result['dataset']}`, {result['num_classes']} classes, {result['train_size']} train / "
             f"{result['test_size']} test images",
             f"- **Teacher**: `{t['teacher']}` ({'trained by this run' if t['trained_here'] else 'given'}), "
             f"test top-1 {t['best_acc']:.2f} %, {t['macs']:,} MACs, {t['params']:,} parameters",
             f"- **Budget**: MACs {_limit(b['max_macs'], t['macs'])}; "
             f"parameters {_limit(b['max_params'], t['params'])}" + _latency_limit(b, s.get("latency")),
             f"- **Predictor**: `{result['predictor']}` (space `{result['space']}`, inputs {s.get('input_type')}); "
             f"{s['num_candidates']:,} candidates scored ({s['strategy']})",
             ""]
    q = result.get("predictor_quality") or {}
    if q:
        said = [f"mean Spearman {q['meta_test_spearman']:.3f}" if "meta_test_spearman" in q else "",
                f"predicted accuracy off by {q['meta_test_pred_acc_mae']:.2f} points on average"
                if "meta_test_pred_acc_mae" in q else ""]
        lines += [f"The predictor on its held-out meta-test tasks: {'; '.join(x for x in said if x)} "
                  "(its `metrics.json`).", ""]
    if not has_acc:
        lines += ["The predictor ranks only (it was trained on standardised targets): the predicted-accuracy "
                  "column is empty and the plots use its score.", ""]
    lat = s.get("latency")
    lines += ["## Picks (KD-trained)", "",
              "| rank | architecture | MACs | % teacher | params | " + ("latency ms (predicted / measured) | " if lat else "")
              + "score | predicted acc (%) | measured best (%) | measured final (%) | "
              + ("from scratch (same steps) (%) | " if scratch else "") + "within budget |",
              "|---:|---|---:|---:|---:|" + ("---:|" if lat else "") + "---:|---:|---:|---:|" + ("---:|" if scratch else "") + "---|"]
    for p in picks:
        arch = p["arch"].replace("|", "\\|")  # a pipe would end the table cell, even in code
        ms = f"{_fmt(p['latency_ms'], '.3f')} / {_fmt(p['latency_ms_measured'], '.3f')} | " if lat else ""
        base = f"{p['scratch_final_acc']:.2f} ± {p['scratch_final_acc_std']:.2f} | " if scratch else ""
        lines.append(f"| {p['rank']} | `{arch}` | {p['macs']:,} | {p['macs_pct_teacher']:.1f} | {p['params']:,} | {ms}"
                     f"{p['score']:.4f} | {_fmt(p['pred_acc'])} | {p['best_acc']:.2f} | "
                     f"{p['final_acc']:.2f} ± {p['final_acc_std']:.2f} | {base}{'yes' if p['within_budget'] else 'NO'} |")
    lines += ["", f"Measured: KD test top-1 (epochs: {result['kd_epochs']}, seeds: {result['seeds']}) of the best "
              "epoch (the predictor's label) and of the last epoch, mean (± std) over the seeds."]
    if scratch:
        lines += ["From scratch (same steps): the same architecture trained from random weights on the labels "
                  "alone (remap random_init, alpha 1), the KD recipe otherwise, so the same number of steps; test "
                  "top-1 of the last epoch, mean ± std over the same seeds. KD paid where the measured final is "
                  "above it."]
    lines += ["",
              "## Time per stage", "", "| stage | seconds | this run |",
              "|---|---:|---|"]
    for name, rec in result["stages"].items():
        lines.append(f"| {name} | {rec['seconds']:.1f} | {'skipped (finished before)' if rec['skipped'] else 'ran'} |")
    lines += ["", "## Files", "",
              "- `picks.csv`: the table above; `stages.csv`: the stage times",
              "- `search/scores.csv`: every candidate with its score and predicted accuracy; `search/top.json`",
              "- `kd/<rank>-<arch key>/`: each pick's KD run (`results.csv`, per seed `metrics.json`, checkpoints"
              + ("; `scratch-seed<k>/`: the from-scratch runs" if scratch else "") + ")",
              "- `plots/candidates.png`, `plots/predicted_vs_measured.png`", ""]
    return "\n".join(lines)


def candidates_plot(path, cands: dict, picks: list[dict], teacher: dict, budget: dict) -> None:
    acc = cands["pred_acc"]
    use_acc = bool(np.isfinite(acc).all()) and acc.size > 0
    colour = acc if use_acc else cands["score"]
    has_latency = budget.get("max_latency_ms") is not None and bool(np.isfinite(cands["latency_ms"]).any())
    fig = new_figure((11.4, 4.4) if has_latency else (6.4, 4.4))
    ax, *rest = fig.subplots(1, 2) if has_latency else [fig.subplots()]
    order = np.argsort(colour, kind="stable")   # the best drawn last, on top
    sc = ax.scatter(cands["macs"][order] / 1e6, cands["params"][order] / 1e3, c=colour[order], s=6, cmap="viridis",
                    alpha=0.8, linewidths=0)
    fig.colorbar(sc, ax=ax, label="predicted accuracy (%)" if use_acc else "predicted score (ranks only)")
    ax.scatter([p["macs"] / 1e6 for p in picks], [p["params"] / 1e3 for p in picks], s=90, facecolors="none",
               edgecolors="red", linewidths=1.5, label="KD-trained picks", zorder=3)
    for p in picks:
        ax.annotate(str(p["rank"]), (p["macs"] / 1e6, p["params"] / 1e3), textcoords="offset points",
                    xytext=(5, 4), fontsize=8, color="red")
    ax.scatter([teacher["macs"] / 1e6], [teacher["params"] / 1e3], marker="*", s=200, color="gold",
               edgecolors="black", label="teacher", zorder=3)
    if budget["max_macs"] is not None:
        ax.axvline(budget["max_macs"] / 1e6, color="red", linestyle="--", linewidth=1, label="MACs budget")
    if budget["max_params"] is not None:
        ax.axhline(budget["max_params"] / 1e3, color="purple", linestyle="--", linewidth=1, label="params budget")
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("parameters (thousands)")
    ax.set_title(f"{len(cands['macs']):,} candidates", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    if has_latency:
        _latency_panel(rest[0], cands, colour, use_acc, picks, budget["max_latency_ms"])
    save_figure(fig, path)


def _latency_panel(ax, cands: dict, colour: np.ndarray, use_acc: bool, picks: list[dict], limit_ms: float) -> None:
    """Predicted latency against predicted accuracy (or score); the picks at their measured latency."""
    ax.scatter(cands["latency_ms"], colour, s=6, color="C0", alpha=0.5, linewidths=0, label="candidates (predicted)")
    got = [p for p in picks if p.get("latency_ms_measured") is not None]
    ax.scatter([p["latency_ms_measured"] for p in got], [p["pred_acc"] if use_acc else p["score"] for p in got],
               s=90, facecolors="none", edgecolors="red", linewidths=1.5, label="picks (measured)", zorder=3)
    ax.axvline(limit_ms, color="red", linestyle="--", linewidth=1, label="latency budget")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("predicted accuracy (%)" if use_acc else "predicted score (ranks only)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def predicted_measured_plot(path, picks: list[dict]) -> None:
    use_acc = all(p["pred_acc"] is not None for p in picks)
    x = np.array([p["pred_acc"] if use_acc else p["score"] for p in picks], dtype=np.float64)
    y = np.array([p["best_acc"] for p in picks], dtype=np.float64)
    fig = new_figure((4.4, 3.8))
    ax = fig.subplots()
    ax.scatter(x, y, s=40, color="C0", zorder=3)
    for p, xi, yi in zip(picks, x, y):
        ax.annotate(str(p["rank"]), (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if use_acc:
        lo, hi = float(min(x.min(), y.min())) - 2, float(max(x.max(), y.max())) + 2
        ax.plot([lo, hi], [lo, hi], color="0.5", linestyle=":", linewidth=1, label="predicted = measured")
        ax.legend(fontsize=7)
    ax.set_xlabel("predicted accuracy (%)" if use_acc else "predicted score (ranks only)")
    ax.set_ylabel("measured KD accuracy, best epoch (%)")
    ax.set_title("trained picks (label: rank)", fontsize=9)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def write_report(run_dir, result: dict) -> None:
    run_dir = Path(run_dir)
    picks = pick_rows(result)
    write_csv(run_dir / "picks.csv", picks, list(PICK_FIELDS) + [k for k in SCRATCH_FIELDS if picks and k in picks[0]])
    write_csv(run_dir / "stages.csv", [{"stage": n, "seconds": r["seconds"], "skipped": r["skipped"]}
                                       for n, r in result["stages"].items()])
    cands = read_candidates(run_dir / "search" / "scores.csv")
    (run_dir / "plots").mkdir(exist_ok=True)
    candidates_plot(run_dir / "plots" / "candidates.png", cands, picks, result["teacher"], result["budget"])
    predicted_measured_plot(run_dir / "plots" / "predicted_vs_measured.png", picks)
    atomic_write_text(run_dir / "report.md", markdown(result, picks))
