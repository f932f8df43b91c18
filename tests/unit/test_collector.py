"""A sync tunes the cyclic garbage collector for its duration only: the process gets its own
settings back, and cycles made during the sync are collectable afterwards."""

from __future__ import annotations

import gc
import weakref

import pytest

from monolyth_pipelines.sync.collector import SYNC_GEN0_THRESHOLD, fewer_collections


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_settings_and_frozen_objects_come_back_even_when_the_sync_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], SYNC_GEN0_THRESHOLD)
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the sync failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_cycle_made_during_the_sync_is_collected_after_it() -> None:
    with fewer_collections():
        node = Node()
        alive = weakref.ref(node)
        del node
    gc.collect()
    assert alive() is None
