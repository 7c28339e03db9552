"""Outcomes: signals about records that arrive after them, and the labeled corpus they make.

* :mod:`.ingest`: ``bronze.outcomes`` from files or the Python API, exactly once;
* :mod:`.labeled`: ``silver.labeled``, conversations joined to their outcomes under the
  late-arrival policy (:class:`.policy.LateArrivalPolicy`);
* :mod:`.snapshot`: filtered snapshots frozen as named, tagged tables.
"""
