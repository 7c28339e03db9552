"""Prepare a Dagster instance for posttrain before any run uses it.

python -m posttrain.instance   # `make ui` and `make demo` do this for you
"""

from __future__ import annotations

import dagster as dg

from posttrain.assets._support import WRITER_POOLS


def prepare_instance(instance: dg.DagsterInstance) -> None:
    """Create the slots of every posttrain writer pool, once and serially.

    Dagster creates a pool's slots when a run first claims it, by counting the slots and
    then inserting the missing ones; two runs claiming a fresh pool at once on the SQLite
    storage can both insert, leaving two slots for a limit of one, and the runs then race
    for the same tables (seen in a test). Creating the slots here, before any run, closes
    that window. Idempotent: a pool that already has its slots is left as it is.
    """
    storage = instance.event_log_storage
    for pool in WRITER_POOLS.values():
        storage.initialize_concurrency_limit_to_default(pool)


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        prepare_instance(instance)


if __name__ == "__main__":
    main()
