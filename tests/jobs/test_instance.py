"""Preparing the Dagster instance gives every writer pool exactly its one slot."""

from __future__ import annotations

import dagster as dg

from posttrain.assets._support import WRITER_POOLS
from posttrain.instance import prepare_instance


def test_prepared_instance_has_one_slot_per_writer_pool_even_when_prepared_twice() -> None:
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        prepare_instance(inst)
        prepare_instance(inst)

        slots = {
            pool: inst.event_log_storage.get_concurrency_info(pool).slot_count
            for pool in WRITER_POOLS.values()
        }
        assert slots == dict.fromkeys(WRITER_POOLS.values(), 1)
