"""PNG figures of the evaluation, drawn with matplotlib's Agg canvas (no display, no pyplot state).

* :func:`scatter_plot`: one method on one task, score (x) against true accuracy (y), the
  correlations in the title.
* :func:`plane_plot`: one task's students in the MACs / true-accuracy plane, each method's top-1
  pick marked, the best student starred, an optional MACs budget as a vertical line.

Files are written atomically; :func:`safe_name` makes a task or method name a file name.
"""
from __future__ import annotations

import io
import re

import numpy as np

from ..io import atomic_write_bytes

MARKERS = "osD^v<>pPhX*d"


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "unnamed"


def new_figure(size: tuple[float, float]):
    """A matplotlib Figure on the Agg canvas (matplotlib is imported on the first plot only)."""
    from matplotlib.figure import Figure  # lazy: matplotlib (~0.5 s) only when plotting
    return Figure(figsize=size)


def save_figure(fig, path) -> None:
    """Render ``fig`` on the Agg canvas and write it as a PNG, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib only when plotting
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def scatter_plot(path, scores: np.ndarray, true: np.ndarray, title: str, xlabel: str, ylabel: str,
                 corr: dict[str, float] | None = None) -> None:
    """Non-finite scores are drawn at the left edge as open markers; positive scores spanning more
    than three decades (synflow) get a log axis."""
    scores = np.asarray(scores, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    fig = new_figure((4.2, 3.6))
    ax = fig.subplots()
    ok = np.isfinite(scores)
    ax.scatter(scores[ok], true[ok], s=18, alpha=0.8)
    if (~ok).any():
        left = scores[ok].min() if ok.any() else 0.0
        ax.scatter(np.full((~ok).sum(), left), true[~ok], s=18, facecolors="none", edgecolors="red",
                   label="non-finite score")
        ax.legend(fontsize=7)
    finite = scores[ok]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 1e3:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if corr:
        title += "\n" + ", ".join(f"{k} {v:.3f}" for k, v in corr.items())
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plane_plot(path, macs: np.ndarray, true: np.ndarray, picks: dict[str, int], title: str,
               ylabel: str, budget: float | None = None) -> None:
    """``picks``: method -> index of its top-1 student; the best true student is starred."""
    macs = np.asarray(macs, dtype=np.float64) / 1e6
    true = np.asarray(true, dtype=np.float64)
    fig = new_figure((6.4, 4.2))
    ax = fig.subplots()
    ax.scatter(macs, true, s=14, color="0.7", label="students")
    best = int(np.argmax(true))
    ax.scatter([macs[best]], [true[best]], s=260, marker="*", color="gold", edgecolors="black", zorder=3,
               label="best student")
    for i, (method, idx) in enumerate(picks.items()):
        ax.scatter([macs[idx]], [true[idx]], s=70 - 3 * i, marker=MARKERS[i % len(MARKERS)],
                   facecolors="none", edgecolors=f"C{i % 10}", linewidths=1.4, zorder=4,
                   label=f"{method} top-1")
    if budget is not None:
        ax.axvline(budget / 1e6, color="red", linestyle="--", linewidth=1, label="MACs budget")
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)
