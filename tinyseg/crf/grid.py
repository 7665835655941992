"""The stages of ``crf-search``'s grid search, independent of how a parameter set is scored.

A *grid* maps each searched parameter (``compat``, ``sdims``, ``schan``: the bilateral kernel's
weight, spatial and colour standard deviations) to the values tried. :func:`staged_search` runs

1. **coarse**: every combination of the grids;
2. **widen** (at most ``widen_rounds`` times): while the best value of a parameter is the smallest
   or the largest of its grid (and beats its neighbour inwards), one more value past that edge, ``v + (v - v_prev)`` above or
   ``v - (v_next - v)`` below (halved towards 0 where that would not stay positive), tried with
   the other parameters at their best — an optimum at the edge of a grid may lie beyond it;
3. **fine**: each parameter at its best and halfway to its neighbours in the (widened) grid.

Whatever still lies on an edge at the end is reported with the option that searches further.
"""
from __future__ import annotations

import itertools

__all__ = ["PARAMS", "fine_values", "scores_of", "edges", "beyond", "further_options", "staged_search"]

#: Searched parameters and their ``crf-search`` options.
PARAMS = {"compat": "--coarse-compat", "sdims": "--coarse-sdims", "schan": "--coarse-schan"}


def fine_values(best: float, coarse) -> list[float]:
    """``best`` and the points halfway to its neighbours in the sorted ``coarse`` values."""
    values = sorted(set(float(v) for v in coarse))
    i = values.index(float(best))
    out = [float(best)]
    if i > 0:
        out.insert(0, (values[i - 1] + best) / 2)
    if i + 1 < len(values):
        out.append((values[i + 1] + best) / 2)
    return out


def scores_of(log) -> dict:
    """``{(compat, sdims, schan): mean_iou}`` of every point a search's ``log`` scored."""
    return {tuple(r[n] for n in PARAMS): r["mean_iou"] for stage in log for r in stage["results"]}


def edges(best: dict, grids: dict, scores: dict | None = None) -> dict:
    """``{name: "smallest" | "largest"}`` for each parameter whose best value is at an end of a grid
    of two values or more (a weight of 0 is no edge: it cannot go lower).

    With ``scores`` (see :func:`scores_of`), an end counts only where the best beats the point one
    step inwards: on a flat stretch the optimum is no more likely beyond the edge than within."""
    out = {}
    for name in PARAMS:
        values = sorted(set(grids[name]))
        if len(values) < 2:
            continue
        if best[name] == values[-1]:
            side, inward = "largest", values[-2]
        elif best[name] == values[0] and values[0] > 0:
            side, inward = "smallest", values[1]
        else:
            continue
        if scores is not None:
            neighbour = scores.get(tuple(inward if n == name else best[n] for n in PARAMS))
            if neighbour is not None and neighbour >= best["mean_iou"]:
                continue
        out[name] = side
    return out


def beyond(values, side: str) -> float:
    """The next value past the ``side`` end of ``values``: one more step of the end's spacing
    (above), or below while it stays positive (else half the smallest value)."""
    values = sorted(set(float(v) for v in values))
    if side == "largest":
        return values[-1] + (values[-1] - values[-2])
    below = values[0] - (values[1] - values[0])
    return below if below > 0 else values[0] / 2


def further_options(best: dict, grids: dict, scores: dict | None = None) -> str:
    """The ``crf-search`` options that search two steps past each edge the best lies on."""
    parts = []
    for name, side in edges(best, grids, scores).items():
        values = sorted(set(float(v) for v in grids[name]))
        for _ in range(2):
            values = sorted(values + [beyond(values, side)])
        parts.append(PARAMS[name] + " " + " ".join(f"{v:g}" for v in values))
    return " ".join(parts)


def staged_search(score, grids: dict, *, widen_rounds: int = 2, fine: bool = True, say=print):
    """Coarse, widen and fine stages (see the module); returns ``(best, log, grids)``.

    Parameters
    ----------
    score : callable
        ``score(stage, points) -> list of float``: the mean IoU of each point, a point being a
        dict ``{"compat": w, "sdims": s, "schan": c}``.
    grids : dict
        The coarse values of each parameter of :data:`PARAMS`.
    widen_rounds : int
        How many times the grid may be widened at an edge (0: never).
    fine : bool
        Run the fine stage.
    say : callable
        Where the one-line reports of widening go.

    Returns
    -------
    best : dict
        The best point and its ``mean_iou``.
    log : list of dict
        ``{"stage": name, "results": [point + mean_iou, ...]}`` per stage.
    grids : dict
        The grids after widening (sorted values).
    """
    grids = {name: sorted(set(float(v) for v in grids[name])) for name in PARAMS}
    log, best, scores = [], None, {}

    def run(stage, points):
        nonlocal best
        points = [p for p in points if tuple(p[n] for n in PARAMS) not in scores]
        if not points:
            return
        results = [dict(p, mean_iou=float(m)) for p, m in zip(points, score(stage, points))]
        scores.update(scores_of([dict(results=results)]))
        log.append(dict(stage=stage, results=results))
        top = max(results, key=lambda r: r["mean_iou"])
        if best is None or top["mean_iou"] > best["mean_iou"]:
            best = top

    def product(axes):
        return [dict(zip(PARAMS, combo)) for combo in itertools.product(*(axes[n] for n in PARAMS))]

    run("coarse", product(grids))
    for _ in range(widen_rounds):
        at_edge = edges(best, grids, scores)
        if not at_edge:
            break
        axes = {name: [best[name]] for name in PARAMS}
        for name, side in at_edge.items():
            value = beyond(grids[name], side)
            say(f"crf-search: the best {name} {best[name]:g} is the {side} value searched; "
                f"widening the grid to {value:g}")
            grids[name] = sorted(grids[name] + [value])
            axes[name].append(value)
        run("widen", product(axes))
    if fine:
        run("fine", product({name: fine_values(best[name], grids[name]) for name in PARAMS}))
    return best, log, grids
