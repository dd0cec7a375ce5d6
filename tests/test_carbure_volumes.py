"""CarbuRe renewable volumes and transfers ("cessions"), and quarterly file statuses (issue 7)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cli.main import main
from cloud.carbure.period import Quarter
from cloud.carbure.status import FileStatus, StatusError, check_transition, deadline_notice, due_quarter
from cloud.carbure.volume_store import VolumeStore
from cloud.carbure.volumes import TransferError, TransferStatus, credited_wh

Q1 = Quarter(2025, 1)


def test_credit_is_energy_times_share_rounded_half_up_to_the_wh() -> None:
    # 1339.200 kWh x 0.2533 = 339.21936 kWh -> 339 219 Wh.
    assert credited_wh(1_339_200, Decimal("0.2533")) == 339_219
    assert credited_wh(3, Decimal("0.5")) == 2  # 1.5 Wh rounds up
    with pytest.raises(ValueError, match="between 0 and 1"):
        credited_wh(1000, Decimal("1.2"))


def test_transfers_follow_the_guide(tmp_path: Path) -> None:
    vs = VolumeStore(tmp_path / "c.sqlite")
    vs.credit(Q1, 4_000_000, Decimal("0.25"))  # 1000 kWh credited
    a = vs.create("TotalEnergies", 600_000)
    assert a.status is TransferStatus.PENDING
    with pytest.raises(TransferError, match=r"500\.000 kWh to Esso refused: only 400\.000 kWh free"):
        vs.create("Esso", 500_000)  # 600 kWh are reserved by the pending transfer
    b = vs.create("Esso", 400_000)
    vs.decide(a.id, TransferStatus.ACCEPTED)
    bal = vs.balance()
    assert (bal.available_wh, bal.pending_wh, bal.accepted_wh, bal.free_wh) == (400_000, 400_000, 600_000, 0)
    with pytest.raises(TransferError, match="needs the obligated party's comment"):
        vs.decide(b.id, TransferStatus.REFUSED)
    assert vs.decide(b.id, TransferStatus.REFUSED, "volume déjà couvert").comment == "volume déjà couvert"
    with pytest.raises(TransferError, match="is accepted; only a pending transfer can be cancelled"):
        vs.decide(a.id, TransferStatus.CANCELLED)
    c = vs.create("Esso", 400_000)  # the refusal freed the volume
    vs.decide(c.id, TransferStatus.CANCELLED)
    assert vs.balance().available_wh == 400_000  # neither refused nor cancelled transfers are debited
    assert [t.status for t in vs.transfers()] == [TransferStatus.ACCEPTED, TransferStatus.REFUSED,
                                                  TransferStatus.CANCELLED]
    with pytest.raises(TransferError, match="above|refused"):
        vs.create("Esso", 400_001)
    vs.close()


def test_status_transitions() -> None:
    check_transition(Q1, None, FileStatus.DRAFT)
    check_transition(Q1, FileStatus.READY, FileStatus.SUBMITTED)
    check_transition(Q1, FileStatus.REJECTED, FileStatus.READY)
    with pytest.raises(StatusError, match="cannot go from draft to submitted"):
        check_transition(Q1, FileStatus.DRAFT, FileStatus.SUBMITTED)
    with pytest.raises(StatusError, match="needs CarbuRe's reason"):
        check_transition(Q1, FileStatus.SUBMITTED, FileStatus.REJECTED, " ")
    with pytest.raises(StatusError, match="from accepted to draft"):
        check_transition(Q1, FileStatus.ACCEPTED, FileStatus.DRAFT)


def test_deadline_warnings() -> None:
    # 2025Q1 is due by 15/04/2025; warnings from 5 days before.
    assert deadline_notice(Q1, None, date(2025, 3, 31)) is None
    assert deadline_notice(Q1, FileStatus.DRAFT, date(2025, 4, 9)) is None
    assert deadline_notice(Q1, FileStatus.DRAFT, date(2025, 4, 10)) == \
        "quarter 2025Q1: due 15/04/2025, 5 days left, file draft"
    assert deadline_notice(Q1, FileStatus.READY, date(2025, 4, 14)) == \
        "quarter 2025Q1: due 15/04/2025, 1 day left, file ready"
    assert deadline_notice(Q1, None, date(2025, 4, 17)) == \
        "quarter 2025Q1: OVERDUE since 15/04/2025 (2 days), file not prepared"
    assert deadline_notice(Q1, FileStatus.SUBMITTED, date(2025, 4, 17)) is None
    assert due_quarter(date(2025, 4, 3)) == Q1
    assert due_quarter(date(2025, 1, 10)) == Quarter(2024, 4)


def test_cli_volumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "carbure.toml"
    cfg.write_text('[carbure]\nregistry = "c.sqlite"\n[store]\npath = "s.sqlite"\n')
    c = ["--config", str(cfg)]
    assert main(["carbure", "volumes", "credit", "--quarter", "2025Q1", "--energy-kwh", "1339.2",
                 "--share", "0.2533", *c]) == 0
    assert "2025Q1: 339.219 kWh credited" in capsys.readouterr().out
    assert main(["carbure", "volumes", "transfer", "--to", "TotalEnergies", "--volume-kwh", "400", *c]) == 2
    assert "only 339.219 kWh free" in capsys.readouterr().err
    assert main(["carbure", "volumes", "transfer", "--to", "TotalEnergies", "--volume-kwh", "300", *c]) == 0
    assert main(["carbure", "volumes", "accept", "--id", "1", *c]) == 0
    assert "available 39.219 kWh, pending 0.000 kWh, transferred 300.000 kWh" in capsys.readouterr().out
