"""Gateway key rotation, grace periods and revocation: registry, CLI and ingest."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cli.main import main
from cloud.ingest import Ingestor
from cloud.ledger import Ledger
from cloud.service import EnrolledGateways
from cloud.stores.sqlite import SqliteStore
from quartier import batch, enrolment, envelope, keys
from quartier.series import Interval, Quality

T0 = datetime(2026, 6, 1, 9, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
CLOUD = X25519PrivateKey.generate()
TOPIC = "quartier/v1/gw-1/batch"


def ivs(seq: int) -> list[Interval]:
    start = 1_768_780_800 + 900 * seq
    return [Interval("cp1", start, 10, 1000 + 10 * seq, 1010 + 10 * seq, Quality.MEASURED)]


def sealed(seq: int, key: Ed25519PrivateKey, created: datetime = T0, gw: str = "gw-1") -> bytes:
    return envelope.seal(
        batch.encode(gw, seq, ivs(seq)), gateway_id=gw, seq=seq, created_ms=int(created.timestamp() * 1000),
        signing_key=key, cloud_public_key=CLOUD.public_key(),
    )


class Site:
    """A gateway key folder, a cloud registry file and an ingestor reading it through EnrolledGateways."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "gw"
        self.registry = tmp_path / "gateways.json"
        keys.create_gateway_key(self.dir)
        enrolment.enrol_gateway(self.registry, "gw-1", self.dir / "gateway.pub", now=T0)
        self.clock = T0
        self.ingestor = Ingestor(
            EnrolledGateways(self.registry), CLOUD, Ledger(tmp_path / "ledger.sqlite"),
            SqliteStore(str(tmp_path / "s.sqlite")), now=lambda: self.clock.timestamp(),
        )

    def key(self, name: str = "gateway.key") -> Ed25519PrivateKey:
        return keys.load_gateway_private(self.dir / name)

    def handle(self, data: bytes) -> tuple[str, str | None]:
        o = self.ingestor.handle(TOPIC, data)
        if o.status == "rejected":
            # A retired key's signature is still checked: its authentic sender is told, so it stops resending.
            # Every other refusal by key state comes before authentication: no answer.
            assert o.ack == (o.reason == "expired-key"), o
        return o.status, o.reason


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_rotation_old_key_accepted_during_grace_then_expired(site: Site) -> None:
    old = site.key()
    assert site.handle(sealed(1, old)) == ("stored", None)
    rotation = keys.rotate_gateway_key(site.dir)
    new = site.key()
    assert rotation.key_id == keys.key_id(new.public_key()).hex() != rotation.old_key_id
    assert keys.key_id(site.key("gateway.key.old").public_key()).hex() == rotation.old_key_id
    # Not enrolled yet: the new key is unknown (the gateway keeps its batch and retries later).
    assert site.handle(sealed(2, new)) == ("rejected", "unknown-key")

    enrolled_at = T0 + 10 * DAY
    site.clock = enrolled_at
    enrolment.enrol_gateway(site.registry, "gw-1", site.dir / "gateway.pub", grace=7 * DAY, now=enrolled_at)
    assert site.handle(sealed(2, new)) == ("stored", None)  # retried after enrolment
    site.clock = enrolled_at + 7 * DAY - timedelta(seconds=1)
    assert site.handle(sealed(3, old)) == ("stored", None)  # batch still in the outbox, signed with the old key
    site.clock = enrolled_at + 7 * DAY
    # The envelope's created_ms is the gateway's say; only the cloud's clock counts.
    assert site.handle(sealed(4, old, created=enrolled_at)) == ("rejected", "expired-key")
    forged = bytearray(sealed(6, old))
    forged[-1] ^= 0xFF  # whoever cannot sign with the old key gets no answer at all
    assert site.handle(bytes(forged)) == ("rejected", "bad-signature")
    assert site.handle(sealed(5, new)) == ("stored", None)

    ledger = site.ingestor.ledger
    assert ledger.rejection_counts() == {"unknown-key": 1, "expired-key": 1, "bad-signature": 1}
    assert site.ingestor.counts["rejected:expired-key"] == 1 and site.ingestor.counts["stored"] == 4
    assert [r for _, r, _, _ in ledger.rejections()] == ["unknown-key", "expired-key", "bad-signature"]
    assert "grace period ended at 2026-06-18T09:00:00Z" in ledger.rejections()[1][2]
    stored = [i.start for i in site.ingestor.store.read_intervals("gw-1", "cp1")]
    assert stored == [ivs(s)[0].start for s in (1, 2, 3, 5)]


def test_revoked_gateway_is_refused_before_its_signature_is_checked(site: Site) -> None:
    k = site.key()
    assert site.handle(sealed(1, k)) == ("stored", None)
    enrolment.revoke(site.registry, "gw-1", "stolen from the plant room", now=T0 + DAY)
    assert site.handle(sealed(2, k)) == ("rejected", "revoked-gateway")
    forged = bytearray(sealed(3, k))
    forged[-1] ^= 0xFF  # bad signature, yet the refusal reason is the revocation
    assert site.handle(bytes(forged)) == ("rejected", "revoked-gateway")
    detail = site.ingestor.ledger.rejections()[0][2]
    assert "revoked at 2026-06-02T09:00:00Z: stolen from the plant room" in detail
    assert site.ingestor.ledger.rejection_counts() == {"revoked-gateway": 2}
    # A revoked gateway cannot be re-enrolled by accident, but can be reinstated with a new key.
    keys.rotate_gateway_key(site.dir)
    with pytest.raises(enrolment.EnrolmentError, match="--reinstate"):
        enrolment.enrol_gateway(site.registry, "gw-1", site.dir / "gateway.pub", now=T0 + 2 * DAY)
    enrolment.enrol_gateway(site.registry, "gw-1", site.dir / "gateway.pub", now=T0 + 2 * DAY, reinstate=True)
    site.clock = T0 + 2 * DAY
    assert site.handle(sealed(4, site.key())) == ("stored", None)
    assert site.handle(sealed(5, k)) == ("rejected", "expired-key")  # the old key gets no grace after a revocation


def test_revoked_key_is_refused_other_keys_are_not(site: Site) -> None:
    old = site.key()
    keys.rotate_gateway_key(site.dir)
    new = site.key()
    enrolment.enrol_gateway(site.registry, "gw-1", site.dir / "gateway.pub", now=T0)
    new_id = keys.key_id(new.public_key()).hex()
    enrolment.revoke(site.registry, "gw-1", "leaked", key=new_id.upper(), now=T0)
    assert site.handle(sealed(1, new)) == ("rejected", "revoked-key")
    assert site.handle(sealed(2, old)) == ("stored", None)  # still in its grace period
    entry = enrolment.load_enrolments(site.registry)["gw-1"]
    assert entry.current is None and entry.revoked_at is None
    assert [entry.state(k, T0) for k in entry.keys] == ["grace", "revoked-key"]
    with pytest.raises(enrolment.EnrolmentError, match="never reinstated"):
        enrolment.enrol_gateway(site.registry, "gw-1", site.dir / "gateway.pub", now=T0)


def test_registry_v1_is_read_and_rewritten_as_v2(tmp_path: Path) -> None:
    gw = tmp_path / "gw"
    keys.create_gateway_key(gw)
    pub = keys.load_gateway_public(gw / "gateway.pub")
    reg = tmp_path / "gateways.json"
    raw = pub.public_bytes(keys.serialization.Encoding.Raw, keys.serialization.PublicFormat.Raw).hex()
    reg.write_text(json.dumps({"gw-1": {"ed25519": raw, "enrolled_at": "2026-01-19T08:00:00Z"}}))
    entry = enrolment.load_enrolments(reg)["gw-1"]
    assert entry.current is not None and entry.current.key_id == keys.key_id(pub).hex()
    assert entry.current.enrolled_at == datetime(2026, 1, 19, 8, tzinfo=timezone.utc)
    # A v1 registry still works at ingest time.
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    ingestor = Ingestor(EnrolledGateways(reg), CLOUD, Ledger(tmp_path / "l.sqlite"), store)
    assert ingestor.handle(TOPIC, sealed(1, keys.load_gateway_private(gw / "gateway.key"))).status == "stored"

    keys.rotate_gateway_key(gw)
    enrolment.enrol_gateway(reg, "gw-1", gw / "gateway.pub", grace=2 * DAY, now=T0)
    doc = json.loads(reg.read_text())
    assert doc["version"] == 2
    first, second = doc["gateways"]["gw-1"]["keys"]
    assert first == {
        "key_id": keys.key_id(pub).hex(), "public_key": raw, "enrolled_at": "2026-01-19T08:00:00Z",
        "retired_at": "2026-06-01T09:00:00Z", "accepted_until": "2026-06-03T09:00:00Z",
    }
    assert second["enrolled_at"] == "2026-06-01T09:00:00Z" and "retired_at" not in second
    assert enrolment.load_enrolments(reg) == enrolment.parse_enrolments(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"version": 3, "gateways": {}}, "version 3 is not supported"),
        ({"version": 2, "gateways": {"gw-1": {"keys": [{"public_key": "00"}]}}}, "gateways.gw-1.keys[0].public_key"),
        ({"version": 2, "gateways": {"gw-1": {"keys": [{"key_id": "0011223344556677", "public_key": "11" * 32,
                                                        "enrolled_at": "2026-01-19T08:00:00Z"}]}}}, "key_id"),
        ({"version": 2, "gateways": {"gw-1": {"keys": [{"public_key": "11" * 32, "enrolled_at": "2026-01-19 08:00"}]}}},
         "no time zone"),
        ({"gw-1": {"ed25519": "zz"}}, "no valid 'ed25519'"),
    ],
)
def test_invalid_registry_names_the_field(tmp_path: Path, doc: object, message: str) -> None:
    reg = tmp_path / "gateways.json"
    reg.write_text(json.dumps(doc))
    with pytest.raises(enrolment.EnrolmentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        enrolment.load_enrolments(reg)


def test_unreadable_registry_fails_closed_with_retry(site: Site) -> None:
    site.registry.write_text("{ broken")
    o = site.ingestor.handle(TOPIC, sealed(1, site.key()))
    assert (o.status, o.reason, o.ack) == ("retry", "registry-unreadable", False)
    assert site.ingestor.ledger.rejection_counts() == {}


def test_rotate_keeps_modes_and_leaves_no_temporary_files(site: Site) -> None:
    keys.rotate_gateway_key(site.dir)
    keys.rotate_gateway_key(site.dir)  # a second rotation replaces the .old pair
    names = sorted(p.name for p in site.dir.iterdir())
    assert names == ["gateway.key", "gateway.key.old", "gateway.pub", "gateway.pub.old"]
    assert [mode(site.dir / n) for n in names] == [0o600, 0o600, 0o644, 0o644]
    assert mode(site.registry) == 0o644
    assert site.key("gateway.key.old").public_key() == keys.load_gateway_public(site.dir / "gateway.pub.old")
    assert site.key().public_key() == keys.load_gateway_public(site.dir / "gateway.pub")


def test_rotate_failing_midway_leaves_the_current_key_usable(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    before = site.key().public_key()
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "gateway.key":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        keys.rotate_gateway_key(site.dir)
    assert site.key().public_key() == before == keys.load_gateway_public(site.dir / "gateway.pub")
    assert not [p for p in site.dir.iterdir() if p.name.endswith(".tmp")]


def test_rotate_refuses_a_missing_or_exposed_key(tmp_path: Path) -> None:
    with pytest.raises(keys.KeyFileError, match="quartier keys gateway --dir"):
        keys.rotate_gateway_key(tmp_path)
    keys.create_gateway_key(tmp_path)
    os.chmod(tmp_path / "gateway.key", 0o644)
    with pytest.raises(keys.KeyFileError, match="chmod 600"):
        keys.rotate_gateway_key(tmp_path)


def test_cli_rotate_enrol_revoke_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gw, reg = tmp_path / "gw", str(tmp_path / "gateways.json")
    assert main(["keys", "gateway", "--dir", str(gw)]) == 0
    old_id = keys.key_id(keys.load_gateway_public(gw / "gateway.pub")).hex()
    assert main(["keys", "enrol", "--registry", reg, "--id", "gw-1", "--public-key", str(gw / "gateway.pub")]) == 0
    capsys.readouterr()

    assert main(["keys", "rotate", "--dir", str(gw)]) == 0
    out = capsys.readouterr().out
    new_id = keys.key_id(keys.load_gateway_public(gw / "gateway.pub")).hex()
    assert f"key id: {new_id}" in out and f"previous key {old_id}" in out and "-----BEGIN PUBLIC KEY-----" in out
    assert mode(gw / "gateway.key") == mode(gw / "gateway.key.old") == 0o600

    assert main(["keys", "enrol", "--registry", reg, "--id", "gw-1", "--public-key", str(gw / "gateway.pub"),
                 "--grace-days", "3"]) == 0
    out = capsys.readouterr().out
    assert f"with key id {new_id}" in out and f"previous key {old_id} accepted until" in out
    assert main(["keys", "enrol", "--registry", reg, "--id", "gw-1", "--public-key", str(gw / "gateway.pub"),
                 "--grace-days", "-1"]) == 2
    assert "--grace-days must be 0 or more" in capsys.readouterr().err

    assert main(["keys", "list", "--registry", reg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["GATEWAY", "KEY", "ID", "STATE", "ENROLLED", "DETAIL"]
    assert lines[1].split()[:3] == ["gw-1", old_id, "grace"] and "accepted until" in lines[1]
    assert lines[2].split()[:3] == ["gw-1", new_id, "current"]

    assert main(["keys", "revoke", "--registry", reg, "--id", "gw-1", "--key-id", old_id, "--reason", "lost"]) == 0
    assert "(revoked-key)" in capsys.readouterr().out
    assert main(["keys", "revoke", "--registry", reg, "--id", "gw-1", "--key-id", "0000000000000000"]) == 2
    assert f"has no key 0000000000000000 (its keys: {old_id}, {new_id})" in capsys.readouterr().err
    assert main(["keys", "revoke", "--registry", reg, "--id", "gw-1", "--key-id", "xyz"]) == 2
    assert "16 hex digits" in capsys.readouterr().err
    assert main(["keys", "revoke", "--registry", reg, "--id", "gw-9"]) == 2
    assert "gateway 'gw-9' is not in" in capsys.readouterr().err
    assert main(["keys", "revoke", "--registry", reg, "--id", "gw-1", "--reason", "decommissioned"]) == 0
    assert "(revoked-gateway)" in capsys.readouterr().out

    assert main(["keys", "list", "--registry", reg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.split()[2] == "revoked" and "gateway revoked" in line for line in lines[1:])
    assert main(["keys", "list", "--registry", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
