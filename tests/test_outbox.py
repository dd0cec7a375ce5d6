"""The outbox keeps batches until acknowledged and never half-writes one."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.outbox import Outbox


def test_batches_get_consecutive_seqs_and_survive_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    s1 = ob.commit({"cp1": {"a": 1}}, lambda seq: (b"env%d" % seq, 1000, 3))
    s2 = ob.commit({"cp1": {"a": 2}}, lambda seq: (b"env%d" % seq, 2000, 4))
    assert (s1, s2) == (1, 2)
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite")
    assert [(e.seq, e.envelope, e.n_intervals) for e in ob.pending(10)] == [(1, b"env1", 3), (2, b"env2", 4)]
    assert ob.meter_states() == {"cp1": {"a": 2}}
    assert ob.counts() == {"pending_batches": 2, "pending_intervals": 7, "rejected_batches": 0,
                           "rejected_intervals": 0, "last_seq": 2}


def test_ack_removes_reject_keeps_and_seq_never_reused(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    for _ in range(3):
        ob.commit({}, lambda seq: (b"x", 0, 1))
    assert ob.acknowledge(1) and not ob.acknowledge(1)
    ob.reject(2, "decrypt-failed")
    assert [e.seq for e in ob.pending(10)] == [3]
    assert [e.seq for e in ob.pending(10, exclude={3})] == []
    ob.acknowledge(3)
    assert ob.commit({}, lambda seq: (b"y", 0, 1)) == 4
    assert ob.counts()["rejected_batches"] == 1


def test_failure_while_sealing_rolls_back_state_and_seq(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.commit({"cp1": {"v": 1}}, lambda seq: (b"a", 0, 1))

    def broken(seq: int) -> tuple[bytes, int, int]:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        ob.commit({"cp1": {"v": 2}}, broken)
    assert ob.meter_states() == {"cp1": {"v": 1}}
    assert ob.commit({"cp1": {"v": 3}}, lambda seq: (b"b", 0, 1)) == 2
