"""Contamination figures for asset metadata and checks: per benchmark and overall rate.

Example:
    >>> import pyarrow as pa
    >>> from posttrain.platform.schemas import SILVER_REJECTIONS
    >>> rejected = pa.Table.from_pylist([{"record_id": "r1", "reason": "contaminated",
    ...     "benchmark": "humaneval", "benchmark_item_id": "HumanEval/3", "matched_ngrams": 9}],
    ...     schema=SILVER_REJECTIONS)
    >>> summary = summarize_contamination(rejected, total_records=200)
    >>> summary.rate, summary.metadata()["contaminated.humaneval"]
    (0.005, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.decontam.step import DecontamStep, find_contaminated
from posttrain.platform.execution import Executor
from posttrain.platform.schemas import RejectionReason


@dataclass(frozen=True)
class BenchmarkContamination:
    """How one benchmark leaked into the data."""

    benchmark: str
    records: int  # contaminated records whose best match is in this benchmark
    items: int  # distinct benchmark items they match
    matched_ngrams: int  # matching n-grams, summed over those records


@dataclass(frozen=True)
class ContaminationSummary:
    """Contaminated records per benchmark among ``total_records`` examined."""

    total_records: int
    benchmarks: tuple[BenchmarkContamination, ...]

    @property
    def contaminated(self) -> int:
        return sum(b.records for b in self.benchmarks)

    @property
    def rate(self) -> float:
        """Contaminated share of the records examined (0 when none were)."""
        return self.contaminated / self.total_records if self.total_records else 0.0

    def exceeds(self, max_rate: float) -> bool:
        """Whether the contamination rate is above ``max_rate`` (the blocking-check rule)."""
        return self.rate > max_rate

    def metadata(self) -> dict[str, int | float]:
        """Flat figures for materialization metadata, e.g. ``contaminated.humaneval``."""
        figures: dict[str, int | float] = {
            "records_examined": self.total_records,
            "contaminated": self.contaminated,
            "contamination_rate": round(self.rate, 6),
        }
        for b in self.benchmarks:
            figures[f"contaminated.{b.benchmark}"] = b.records
            figures[f"items_matched.{b.benchmark}"] = b.items
            figures[f"matched_ngrams.{b.benchmark}"] = b.matched_ngrams
        return figures

    def describe(self) -> str:
        """One sentence, e.g. ``3 of 1,000 records (0.30%) contaminated: humaneval 3 (2 items)``."""
        head = (
            f"{self.contaminated:,} of {self.total_records:,} records "
            f"({self.rate:.2%}) contaminated"
        )
        if not self.benchmarks:
            return head
        parts = ", ".join(
            f"{b.benchmark} {b.records:,} ({b.items:,} items)" for b in self.benchmarks
        )
        return f"{head}: {parts}"


def summarize_contamination(evidence: pa.Table, total_records: int) -> ContaminationSummary:
    """Sum contamination evidence per benchmark.

    Args:
        evidence: ``silver.rejections`` rows (only reason ``contaminated`` counts) or the
            rows :func:`~posttrain.platform.decontam.step.find_contaminated` returns; both
            carry ``benchmark``, ``benchmark_item_id`` and ``matched_ngrams``.
        total_records: records examined, for the rate.
    """
    if "reason" in evidence.column_names:
        evidence = evidence.filter(pc.equal(evidence["reason"], RejectionReason.CONTAMINATED.value))
    if evidence.num_rows == 0:
        return ContaminationSummary(total_records, ())
    grouped = (
        evidence.group_by("benchmark")
        .aggregate(
            [
                ("benchmark", "count"),
                ("benchmark_item_id", "count_distinct"),
                ("matched_ngrams", "sum"),
            ]
        )
        .sort_by("benchmark")
    )
    benchmarks = tuple(
        BenchmarkContamination(
            benchmark=row["benchmark"],
            records=row["benchmark_count"],
            items=row["benchmark_item_id_count_distinct"],
            matched_ngrams=row["matched_ngrams_sum"] or 0,
        )
        for row in grouped.to_pylist()
    )
    return ContaminationSummary(total_records, benchmarks)


def measure_contamination(
    data: pa.Table, step: DecontamStep, executor: Executor
) -> ContaminationSummary:
    """Scan ``data`` (e.g. a gold table about to be published) and summarize its contamination."""
    return summarize_contamination(find_contaminated(data, step, executor), data.num_rows)
