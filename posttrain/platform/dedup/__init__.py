"""Exact and near-duplicate detection over Arrow tables, in-process or on Ray.

Public surface:

* :class:`DedupConfig`: threshold, shingle size, MinHash and LSH parameters, text view,
  ``drop_whole_cluster``.
* :func:`deduplicate`: candidates (+ what is already published) → :class:`DedupResult`
  (per-record assignments, ``silver.rejections`` rows, the ``exact_hash``/``minhash``
  values ``silver.conversations`` stores, and :class:`DedupStats`).
* :class:`PublishedIndex`: the published records' ids, exact hashes and signatures.

The rules, in one place:

* **Text**: a string column, or a conversation's turns chosen by ``text_view`` (all,
  prompt, response) through :func:`~posttrain.platform.messages.conversation_text`.
* **Exact duplicates**: equal normal form (Unicode NFKC, lower case, invisible format
  characters removed, whitespace runs collapsed; :mod:`.normalize`), compared by XXH3-128.
  Texts with an empty normal form are never duplicates.
* **Near duplicates**: estimated Jaccard similarity ≥ ``threshold`` of the sets of word
  ``ngram``-grams (punctuation and symbols dropped), from R-MinHash signatures
  (``rensa``); LSH banding proposes candidates, each is verified, and clusters are the
  connected components of verified pairs (union-find).
* **Keeper rule**: a cluster that contains a published record keeps it (the smallest
  ``record_id`` among published members); otherwise it keeps the record with the
  lexicographically smallest ``record_id``. Never arrival order, batch or worker.
* **Across time**: new records are compared with the published ones through their stored
  hashes and signatures; published records are never rejected, and every rejection names
  the kept record it matched (``kept_record_id``) and the estimated similarity.
* **drop_whole_cluster**: every member of a cluster of new records is rejected, the
  would-be keeper included; such rejections have no ``kept_record_id`` (nothing was kept)
  and name the would-be keeper in ``detail``. A cluster with a published member keeps
  that member as usual.
"""

from typing import TYPE_CHECKING

from posttrain.platform._lazy import lazy_exports

if TYPE_CHECKING:
    from posttrain.platform.dedup.config import DedupConfig
    from posttrain.platform.dedup.dedup import DedupResult, DedupStats, deduplicate
    from posttrain.platform.dedup.outcome import ASSIGNMENTS_SCHEMA
    from posttrain.platform.dedup.published import PublishedIndex

# Imported on first use, so the CLI can read DedupConfig's defaults without pyarrow or Ray.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ["DedupConfig"],
        "dedup": ["DedupResult", "DedupStats", "deduplicate"],
        "outcome": ["ASSIGNMENTS_SCHEMA"],
        "published": ["PublishedIndex"],
    },
)

__all__ = [
    "ASSIGNMENTS_SCHEMA",
    "DedupConfig",
    "DedupResult",
    "DedupStats",
    "PublishedIndex",
    "deduplicate",
]
