"""Metrics across checkpoints and corpus versions, from ``eval.results``.

One row per eval run (suite × model × experiment × corpus version × run): the mean item
score, items, errors. ``posttrain eval compare`` prints it; the Dagster UI shows the same
rows as a Markdown table with a plot of the metric per corpus version
(:func:`comparison_markdown`).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse

RESULTS = TableName.EVAL_RESULTS
NO_VERSION = "-"
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunScore:
    """One eval run's figures."""

    suite: str
    metric: str
    model: str
    experiment_id: str | None
    corpus_version: str | None
    run_id: str
    created_at: datetime | None
    items: int
    score: float
    errors: int


def compare(
    warehouse: Warehouse,
    *,
    suites: list[str] | None = None,
    models: list[str] | None = None,
    latest: bool = False,
    snapshot_id: int | None = None,
) -> list[RunScore]:
    """Every eval run's score, ordered by suite, then time.

    Args:
        suites: only these suites.
        models: only runs whose model contains one of these strings.
        latest: keep only the newest run per suite, model, experiment and corpus version.
        snapshot_id: read ``eval.results`` at this snapshot (default: current).
    """
    if not warehouse.exists(RESULTS):
        return []
    pinned = snapshot_id if snapshot_id is not None else warehouse.snapshot_id(RESULTS)
    if pinned is None:
        return []
    columns = (
        "run_id", "suite", "metric", "model", "experiment_id", "corpus_version", "created_at",
        "score", "error",
    )  # fmt: skip
    data = warehouse.read(RESULTS, columns=columns, snapshot_id=pinned)
    if suites:
        data = data.filter(pc.is_in(data["suite"], pa.array(suites, pa.string())))
    has_error = pc.invert(pc.is_null(data["error"])).cast(pa.int64())
    data = data.append_column("has_error", has_error)
    keys = ["run_id", "suite", "metric", "model", "experiment_id", "corpus_version", "created_at"]
    grouped = data.group_by(keys, use_threads=False).aggregate(
        [("score", "mean"), ("score", "count"), ("has_error", "sum")]
    )
    runs = [
        RunScore(
            suite=row["suite"] or "",
            metric=row["metric"] or "",
            model=row["model"] or "",
            experiment_id=row["experiment_id"],
            corpus_version=row["corpus_version"],
            run_id=row["run_id"],
            created_at=row["created_at"],
            items=int(row["score_count"]),
            score=float(row["score_mean"] or 0.0),
            errors=int(row["has_error_sum"] or 0),
        )
        for row in grouped.to_pylist()
    ]
    if models:
        runs = [r for r in runs if any(m in r.model for m in models)]
    runs.sort(key=lambda r: (r.suite, r.created_at or _NEVER, r.run_id))
    if latest:
        newest: dict[tuple[str, str, str | None, str | None], RunScore] = {}
        for run in runs:
            newest[(run.suite, run.model, run.experiment_id, run.corpus_version)] = run
        runs = [
            r for r in runs if newest[(r.suite, r.model, r.experiment_id, r.corpus_version)] is r
        ]
    return runs


@dataclass(frozen=True)
class Pivot:
    """Scores as a matrix: one row per suite and model, one column per corpus version."""

    versions: list[str]
    rows: list[tuple[str, str, str, dict[str, float]]]  # suite, metric, model, version → score


def pivot(runs: list[RunScore]) -> Pivot:
    """The newest score of each suite × model × corpus version (``-``: no version)."""
    versions: list[str] = []
    cells: dict[tuple[str, str, str], dict[str, float]] = {}
    for run in runs:  # oldest first: a newer run of the same cell overwrites
        version = run.corpus_version or NO_VERSION
        if version not in versions:
            versions.append(version)
        cells.setdefault((run.suite, run.metric, run.model), {})[version] = run.score
    return Pivot(versions, [(*key, scores) for key, scores in sorted(cells.items())])


def comparison_markdown(runs: list[RunScore]) -> str:
    """The runs as a Markdown table, with the metric-per-version plot embedded as a PNG."""
    if not runs:
        return "No eval runs in eval.results yet."
    lines = [
        "| suite | metric | score | items | errors | model | experiment | corpus version | run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.suite} | {r.metric} | {r.score:.3f} | {r.items} | {r.errors} | "
            f"`{r.model}` | {r.experiment_id or NO_VERSION} | "
            f"{r.corpus_version or NO_VERSION} | {r.run_id} |"
        )
    image = base64.b64encode(plot_png(runs)).decode()
    return "\n".join(lines) + f"\n\n![metric per corpus version](data:image/png;base64,{image})\n"


def _short_model(model: str) -> str:
    """``openai:URL#NAME`` → ``NAME``; a checkpoint path → its last folder."""
    if "#" in model:
        return model.rsplit("#", 1)[1]
    return model.rstrip("/").rsplit("/", 1)[-1]


_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def plot_png(runs: list[RunScore], *, width: int = 720, height: int = 360) -> bytes:
    """A line chart of the score per corpus version (x, in order of first run), one line per
    suite and model, as PNG bytes. Runs without a corpus version sit at ``-``."""
    from PIL import Image, ImageDraw, ImageFont

    versions: list[str] = []
    for run in runs:
        label = run.corpus_version or NO_VERSION
        if label not in versions:
            versions.append(label)
    series: dict[str, dict[str, float]] = {}
    for run in runs:  # later runs of the same point win: the newest score is shown
        name = f"{run.suite} {run.metric} · {_short_model(run.model)}"
        series.setdefault(name, {})[run.corpus_version or NO_VERSION] = run.score
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 48, width - 16, 16, height - 110
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    for tick in range(0, 11, 2):
        y = bottom - (bottom - top) * tick / 10
        draw.line((left - 4, y, right, y), fill=(225, 225, 225) if tick else (120, 120, 120))
        draw.text((8, y - 6), f"{tick / 10:.1f}", fill="black", font=font)

    def x_of(index: int) -> float:
        if len(versions) == 1:
            return (left + right) / 2
        return left + 24 + (right - left - 48) * index / (len(versions) - 1)

    for index, label in enumerate(versions):
        draw.text((x_of(index) - 3 * len(label), bottom + 6), label, fill="black", font=font)
    for number, (name, points) in enumerate(sorted(series.items())):
        color = _PALETTE[number % len(_PALETTE)]
        xy = [
            (x_of(i), bottom - (bottom - top) * points[v])
            for i, v in enumerate(versions)
            if v in points
        ]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        for x, y in xy:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=color)
        legend_y = bottom + 26 + 14 * (number % 5)
        legend_x = left + (number // 5) * 340
        draw.rectangle((legend_x, legend_y + 3, legend_x + 10, legend_y + 9), fill=color)
        draw.text((legend_x + 16, legend_y), name[:52], fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
