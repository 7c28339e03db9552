"""Decontamination: keep benchmark text (the ``eval.*`` tables) out of training data.

Records sharing word n-grams with a benchmark item become ``silver.rejections`` rows with
reason ``contaminated`` and the evidence; see :class:`DecontamConfig` for the rule and the
measurement behind its defaults.
"""

from typing import TYPE_CHECKING

from posttrain.platform._lazy import lazy_exports

if TYPE_CHECKING:
    from posttrain.platform.decontam.config import DecontamConfig
    from posttrain.platform.decontam.index import Matches, NgramIndex, ReferenceSet
    from posttrain.platform.decontam.ngrams import normalized_tokens
    from posttrain.platform.decontam.references import (
        build_index,
        eval_reference_tables,
        index_from_warehouse,
        reference_from_benchmark,
        reference_from_file,
        reference_from_table,
        reference_set,
        references_from_warehouse,
    )
    from posttrain.platform.decontam.step import (
        EVIDENCE_FIELDS,
        DecontamStep,
        find_contaminated,
        run_decontam,
    )
    from posttrain.platform.decontam.summary import (
        BenchmarkContamination,
        ContaminationSummary,
        measure_contamination,
        summarize_contamination,
    )

# Imported on first use, so the CLI can read DecontamConfig's defaults without pyiceberg or Ray.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ["DecontamConfig"],
        "index": ["Matches", "NgramIndex", "ReferenceSet"],
        "ngrams": ["normalized_tokens"],
        "references": [
            "build_index",
            "eval_reference_tables",
            "index_from_warehouse",
            "reference_from_benchmark",
            "reference_from_file",
            "reference_from_table",
            "reference_set",
            "references_from_warehouse",
        ],
        "step": ["EVIDENCE_FIELDS", "DecontamStep", "find_contaminated", "run_decontam"],
        "summary": [
            "BenchmarkContamination",
            "ContaminationSummary",
            "measure_contamination",
            "summarize_contamination",
        ],
    },
)

__all__ = [
    "EVIDENCE_FIELDS",
    "BenchmarkContamination",
    "ContaminationSummary",
    "DecontamConfig",
    "DecontamStep",
    "Matches",
    "NgramIndex",
    "ReferenceSet",
    "build_index",
    "eval_reference_tables",
    "find_contaminated",
    "index_from_warehouse",
    "measure_contamination",
    "normalized_tokens",
    "reference_from_benchmark",
    "reference_from_file",
    "reference_from_table",
    "reference_set",
    "references_from_warehouse",
    "run_decontam",
    "summarize_contamination",
]
