"""The CarbuRe evidence bundle and ``quartier verify``: real keys, real envelopes, the real ingest path (issue 7).

A 2025Q1 (2024-12-31T23:00Z to 2025-03-31T22:00Z, 8636 intervals) of two
gateways, sealed as one batch per day (seq 1 holds the intervals starting in
[START - 900 s, START - 900 s + 1 day), seq k the k-th day), ingested by
:class:`cloud.ingest.Ingestor` into a SQLite store and ledger. Hand-computed:

* FRQRTE0001A on gw-a/cp1, 22 kW: accepted 2024Q4 index 5000.123 kWh at START,
  carried by the interval [START - 900, START) of batch gw-a#1; +250 Wh per
  interval: 5000.123 + 8636 x 0.25 = 7159.123 kWh at the boundary, from the
  interval starting at BOUNDARY - 900, in day (8636 x 900) // 86400 = 89:
  batch gw-a#90. 2159 kWh used, load factor 1/22 = 0.0455.
* FRQRTE0002A, 22 kW: gw-a/cp2-old from 3000.000 kWh (accepted 2024Q4 at START,
  no batch carries it: declared only), +100 Wh for 3880 intervals to the swap at
  2025-02-10T09:00Z: final 3388.000 kWh from the interval ending at the swap,
  day (3880 x 900) // 86400 = 40: batch gw-a#41. New meter gw-a/cp2 from 0.500
  kWh, +200 Wh for 4756 intervals: 951.700 kWh (gw-a#90). Used 388.000 +
  951.200 = 1339.200 kWh, load factor 1339.2 / (22 x 2159) = 0.0282.
* FRQRTE0003A on gw-b/cp3, 22 kW, installed at START with 10000.000 kWh, no
  accepted reading; +500 Wh per interval: 14318.000 kWh (gw-b#90), 4318 kWh
  used, load factor 4318 / 47498 = 0.0909.

Bundle: batches gw-a#1, gw-a#41, gw-a#90, gw-b#90.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from cli.main import main
from cloud.carbure.registry import AcceptedReading, ChargePoint, CurrentType, MeterLink, Registry
from cloud.ingest import Ingestor
from cloud.ledger import Ledger
from cloud.stores.sqlite import SqliteStore
from quartier import batch, enrolment, envelope, keys
from quartier.series import INTERVAL_S, Interval, Quality, parse_utc

START = parse_utc("2024-12-31T23:00:00Z")
BOUNDARY = parse_utc("2025-03-31T22:00:00Z")
SWAP = parse_utc("2025-02-10T09:00:00Z")
DAY = 86400
BASE = START - INTERVAL_S
Capture = pytest.CaptureFixture[str]


def ramp(meter: str, t0: int, t1: int, index0: int, step: int) -> list[Interval]:
    """Measured intervals from t0 to t1 [s UTC], the index rising by ``step`` Wh each."""
    return [Interval(meter, t, step, index0 + k * step, index0 + (k + 1) * step, Quality.MEASURED)
            for k, t in enumerate(range(t0, t1, INTERVAL_S))]


def point(pid: str) -> ChargePoint:
    return ChargePoint(pid, date(2022, 3, 1), "LNE-12345", date(2025, 1, 1), 0, "12345678901234",
                       CurrentType.AC, False, Decimal(22), "FRQRTP0001")


def link(pid: str, gw: str, meter: str, initial: int, at: int) -> MeterLink:
    return MeterLink(pid, gw, meter, "ABB B23", "", initial, at, "FRQRTP0001")


@dataclass(frozen=True)
class Site:
    dir: Path
    config: Path
    bundle: Path
    xlsx: Path
    cloud_key: Path
    gateways: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    d = tmp_path_factory.mktemp("evidence")
    (d / "cloud").mkdir()
    cloud_priv, cloud_pub = keys.create_cloud_key(d / "cloud")
    signing = {}
    for gw in ("gw-a", "gw-b"):
        (d / gw).mkdir()
        priv, pub = keys.create_gateway_key(d / gw)
        enrolment.enrol_gateway(d / "gateways.json", gw, pub)
        signing[gw] = keys.load_gateway_private(priv)
    (d / "cloud.toml").write_text('[cloud]\nstate_dir = "state"\nprivate_key = "cloud/cloud.key"\n'
                                  'gateways = "gateways.json"\n[store]\npath = "series.sqlite"\n')
    (d / "state").mkdir()
    ingestor = Ingestor(enrolment.load_enrolments(d / "gateways.json").get, keys.load_cloud_private(cloud_priv),
                        Ledger(d / "state" / "ledger.sqlite"), SqliteStore(str(d / "series.sqlite")))
    data = {
        "gw-a": ramp("cp1", BASE, BOUNDARY + 4 * INTERVAL_S, 5_000_123 - 250, 250)
        + ramp("cp2-old", START, SWAP, 3_000_000, 100) + ramp("cp2", SWAP, BOUNDARY, 500, 200),
        "gw-b": ramp("cp3", START, BOUNDARY, 10_000_000, 500),
    }
    cloud_public = keys.load_cloud_public(cloud_pub)
    for gw, ivs in data.items():
        days: dict[int, list[Interval]] = {}
        for iv in ivs:
            days.setdefault((iv.start - BASE) // DAY, []).append(iv)
        for day, chunk in sorted(days.items()):
            seq = day + 1
            env = envelope.seal(batch.encode(gw, seq, chunk), gateway_id=gw, seq=seq, created_ms=0,
                                signing_key=signing[gw], cloud_public_key=cloud_public)
            assert ingestor.handle(f"quartier/v1/{gw}/batch", env).status == "stored"
    ingestor.ledger.close()
    ingestor.store.close()

    reg = Registry(d / "carbure.sqlite")
    reg.upsert_points([point("FRQRTE0001A"), point("FRQRTE0002A"), point("FRQRTE0003A")])
    reg.set_links([link("FRQRTE0001A", "gw-a", "cp1", 1_000_000, parse_utc("2022-03-01T00:00:00Z")),
                   link("FRQRTE0002A", "gw-a", "cp2-old", 0, parse_utc("2022-03-01T00:00:00Z")),
                   link("FRQRTE0002A", "gw-a", "cp2", 500, SWAP),
                   link("FRQRTE0003A", "gw-b", "cp3", 10_000_000, START)])
    reg.record_accepted(AcceptedReading("FRQRTE0001A", "2024Q4", START, 5_000_123, "gw-a", "cp1"))
    reg.record_accepted(AcceptedReading("FRQRTE0002A", "2024Q4", START, 3_000_000, "gw-a", "cp2-old"))
    reg.close()
    cfg = d / "carbure.toml"
    cfg.write_text('[carbure]\nregistry = "carbure.sqlite"\nout_dir = "out"\ncloud = "cloud.toml"\n'
                   '[store]\nbackend = "sqlite"\npath = "series.sqlite"\n')
    return Site(d, cfg, d / "out" / "carbure-2025Q1-evidence", d / "out" / "carbure-2025Q1.xlsx", cloud_priv,
                d / "gateways.json")


def prepared(site: Site, capsys: Capture) -> str:
    """Run ``quartier carbure quarter`` once (it writes the bundle); its output."""
    if not site.bundle.exists():
        assert main(["carbure", "quarter", "--quarter", "2025Q1", "--config", str(site.config)]) == 0
        return capsys.readouterr().out
    return ""


@pytest.fixture
def bundle(site: Site, tmp_path: Path, capsys: Capture) -> Path:
    """A fresh copy of the quarter's bundle, to tamper with."""
    prepared(site, capsys)
    return Path(shutil.copytree(site.bundle, tmp_path / "bundle"))


def verify(b: Path, site: Site, capsys: Capture, *extra: str) -> tuple[int, str]:
    rc = main(["verify", str(b), *extra])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def manifest(b: Path) -> dict[str, Any]:
    return json.loads((b / "manifest.json").read_text(encoding="utf-8"))


def edit_manifest(b: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = manifest(b)
    change(doc)
    (b / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")


def test_quarter_writes_the_bundle_with_the_batches_behind_each_figure(site: Site, capsys: Capture) -> None:
    out = prepared(site, capsys) or "(prepared by another test)"
    doc = manifest(site.bundle)
    assert [(b["gateway"], b["seq"]) for b in doc["batches"]] == [("gw-a", 1), ("gw-a", 41), ("gw-a", 90),
                                                                  ("gw-b", 90)]
    by = {p["point"]["point_id"]: p for p in doc["points"]}
    f1, f2, f3 = (by[p]["figures"] for p in ("FRQRTE0001A", "FRQRTE0002A", "FRQRTE0003A"))
    assert (f1["previous_wh"], f1["index_wh"], f1["energy_wh"], f1["load_factor"], f1["reading_date"]) == (
        5_000_123, 7_159_123, 2_159_000, "0.0455", "01/04/2025")
    assert (f2["file_previous_wh"], f2["index_wh"], f2["energy_wh"], f2["load_factor"]) == (
        500, 951_700, 1_339_200, "0.0282")
    assert (f2["replacements[0].old_final_wh"], f2["replacements[0].old_final_at"]) == (3_388_000,
                                                                                       "2025-02-10T09:00:00Z")
    assert (f3["previous_wh"], f3["index_wh"], f3["energy_wh"], f3["load_factor"]) == (
        10_000_000, 14_318_000, 4_318_000, "0.0909")
    cites = {(pid, s["figure"]): (s["gateway"], s["seq"]) for pid, p in by.items() for s in p["sources"]}
    assert cites == {
        ("FRQRTE0001A", "index_wh"): ("gw-a", 90), ("FRQRTE0001A", "previous_wh"): ("gw-a", 1),
        ("FRQRTE0002A", "index_wh"): ("gw-a", 90), ("FRQRTE0002A", "replacements[0].old_final_wh"): ("gw-a", 41),
        ("FRQRTE0002A", "previous_wh"): ("gw-a", None), ("FRQRTE0003A", "index_wh"): ("gw-b", 90),
    }
    assert (site.bundle / "batches" / "gw-a-41.qrt").read_bytes()[:4] == b"QRT1"
    if out != "(prepared by another test)":
        assert f"evidence: {site.bundle} (4 batches)" in out
        assert "evidence: note: point FRQRTE0002A: previous_wh: no archived batch of gateway gw-a" in out


def test_untouched_bundle_verifies(site: Site, bundle: Path, capsys: Capture) -> None:
    rc, out = verify(bundle, site, capsys, "--cloud-key", str(site.cloud_key), "--xlsx", str(site.xlsx),
                     "--gateways", str(site.gateways))
    assert rc == 0, out
    assert "batches: 4 of 4 signatures verified" in out
    assert "payloads: each compared with its decrypted envelope" in out
    assert "figures: 3 points recomputed" in out
    assert "point FRQRTE0002A: previous index 3000000 Wh (accepted reading 2024Q4) is declared" in out
    assert out.rstrip().endswith(f"{bundle}: OK")
    rc, out = verify(bundle, site, capsys)
    assert rc == 0
    assert "payloads: NOT CHECKED against the encrypted envelopes (no --cloud-key)" in out
    assert out.rstrip().endswith("OK (payloads not checked against the envelopes: no --cloud-key)")


def test_a_flipped_byte_in_an_envelope_fails_its_signature_and_its_figures(
        site: Site, bundle: Path, capsys: Capture) -> None:
    f = bundle / "batches" / "gw-a-90.qrt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    rc, out = verify(bundle, site, capsys, "--cloud-key", str(site.cloud_key))
    assert rc == 1
    assert ("FAIL: batch gw-a#90 (batches/gw-a-90.qrt): the signature does not verify with key "
            f"{manifest(bundle)['keys'][0]['key_id']} (the envelope was altered)") in out
    # Without that batch, cp1's latest bundled index is a day-1 one: no reading can be recomputed.
    assert ("FAIL: point FRQRTE0001A: figure index_wh: expected nothing (recomputed from no bundled batch), "
            "found 7159123 in the manifest (which cites batch gw-a#90)") in out
    assert "FRQRTE0003A" not in out.split("FAIL", 1)[1]  # gw-b's batches are intact
    assert out.rstrip().endswith("problems")


def test_a_changed_figure_in_the_manifest_is_named(site: Site, bundle: Path, capsys: Capture) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["points"][0]["figures"]["index_wh"] = 7_159_124
    edit_manifest(bundle, change)
    rc, out = verify(bundle, site, capsys, "--cloud-key", str(site.cloud_key))
    assert rc == 1
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [
        "FAIL: point FRQRTE0001A: figure index_wh: expected 7159123 (recomputed from batch gw-a#90), "
        "found 7159124 in the manifest (which cites batch gw-a#90)"]


def test_a_changed_figure_in_the_xlsx_is_named(site: Site, bundle: Path, tmp_path: Path,
                                               capsys: Capture) -> None:
    wb = load_workbook(site.xlsx)
    wb.active["C3"] = 951.8
    xlsx = tmp_path / "tampered.xlsx"
    wb.save(xlsx)
    rc, out = verify(bundle, site, capsys, "--xlsx", str(xlsx))
    assert rc == 1
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [
        f"FAIL: {xlsx}: row 3, column C (Energie active totale soutirée au 01/04/2025): point FRQRTE0002A: "
        "expected 951.700 kWh (recomputed from batch gw-a#90), found 951.800 kWh"]


def test_another_validly_signed_batch_in_place_of_one_is_detected(
        site: Site, bundle: Path, capsys: Capture) -> None:
    ledger = Ledger(site.dir / "state" / "ledger.sqlite")
    try:
        (seq42, env42), = ledger.archived("gw-a", SWAP + DAY - INTERVAL_S, SWAP + DAY - INTERVAL_S + 1)
    finally:
        ledger.close()
    assert seq42 == 42
    plain42 = envelope.decrypt(envelope.parse(env42), keys.load_cloud_private(site.cloud_key))
    (bundle / "batches" / "gw-a-41.qrt").write_bytes(env42)
    (bundle / "payloads" / "gw-a-41.json").write_bytes(plain42)
    rc, out = verify(bundle, site, capsys)
    assert rc == 1
    assert ("FAIL: batch gw-a#41 (batches/gw-a-41.qrt): the envelope file holds batch gw-a#42, the manifest "
            "says gw-a#41 (a substituted batch)") in out
    assert "FAIL: point FRQRTE0002A: figure replacements[0].old_final_wh: expected 3009500" in out
    assert "found 3388000 in the manifest (which cites batch gw-a#41)" in out


def test_a_payload_from_another_batch_or_forged_is_detected(
        site: Site, bundle: Path, capsys: Capture) -> None:
    # Another batch's payload: its own (gateway, seq) betrays it, even without the cloud key.
    shutil.copy(bundle / "payloads" / "gw-b-90.json", bundle / "payloads" / "gw-a-1.json")
    rc, out = verify(bundle, site, capsys)
    assert rc == 1
    assert ("FAIL: batch gw-a#1 (batches/gw-a-1.qrt): payload payloads/gw-a-1.json: batch gw-a#1: payload says "
            "'gw-b'#90, header says 'gw-a'#1") in out
    assert ("FAIL: point FRQRTE0001A: figure previous_wh: the accepted reading 2024Q4 says 5000123 Wh at "
            "2024-12-31T23:00:00Z, batch gw-a#1 carries nothing for meter gw-a/cp1") in out
    # A forged payload under the right header, with a manifest forged to match: only the cloud key tells.
    shutil.copy(site.bundle / "payloads" / "gw-a-1.json", bundle / "payloads" / "gw-a-1.json")
    p = bundle / "payloads" / "gw-b-90.json"
    p.write_text(p.read_text().replace('"index_end_wh":14318000', '"index_end_wh":14319000'))

    def forge(doc: dict[str, Any]) -> None:
        f = doc["points"][2]["figures"]
        f["index_wh"], f["energy_wh"], f["load_factor"] = 14_319_000, 4_319_000, "0.0909"
    edit_manifest(bundle, forge)
    rc, out = verify(bundle, site, capsys)
    assert rc == 0 and "NOT CHECKED" in out
    rc, out = verify(bundle, site, capsys, "--cloud-key", str(site.cloud_key))
    assert rc == 1
    assert ("FAIL: batch gw-b#90 (batches/gw-b-90.qrt): the bundled payload payloads/gw-b-90.json differs from "
            "what the envelope decrypts to (the payload was altered)") in out
    assert ("FAIL: point FRQRTE0003A: figure index_wh: expected nothing (recomputed from no bundled batch), "
            "found 14319000 in the manifest (which cites batch gw-b#90)") in out


def test_a_wrong_gateway_key_is_detected(site: Site, bundle: Path, capsys: Capture) -> None:
    doc = manifest(bundle)
    ka, kb = (next(k for k in doc["keys"] if k["gateway"] == g) for g in ("gw-a", "gw-b"))
    shutil.copy(bundle / kb["file"], bundle / ka["file"])
    rc, out = verify(bundle, site, capsys)
    assert rc == 1
    assert (f"FAIL: key {ka['file']} of gateway gw-a: its key id is {kb['key_id']}, the manifest lists "
            f"{ka['key_id']} (a substituted key)") in out
    assert (f"FAIL: batch gw-a#41 (batches/gw-a-41.qrt): signed with key id {ka['key_id']}, and no verified key "
            "of gateway gw-a in the bundle has that id") in out
    # Listing the substituted key's id too does not help: the envelopes name the key that signed them.
    edit_manifest(bundle, lambda d: d["keys"][0].update(key_id=kb["key_id"]))
    rc, out = verify(bundle, site, capsys)
    assert rc == 1 and f"FAIL: batch gw-a#1 (batches/gw-a-1.qrt): signed with key id {ka['key_id']}" in out
    # A key enrolled for another gateway is refused against the registry.
    rc, out = verify(bundle, site, capsys, "--gateways", str(site.gateways))
    assert f"FAIL: key {ka['file']}: key id {kb['key_id']} is not enrolled for gateway gw-a" in out


def test_user_errors_exit_2(site: Site, bundle: Path, tmp_path: Path, capsys: Capture) -> None:
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    edit_manifest(bundle, lambda d: d["points"][1]["meters"][0].update(comment="x"))
    assert main(["verify", str(bundle)]) == 2
    assert f"{bundle / 'manifest.json'}: points[1].meters[0].comment: unknown key" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text('{"format": "quartier-carbure-evidence/1", "quarter": "2025Q5"}')
    assert main(["verify", str(tmp_path / "b")]) == 2
    assert "manifest.json: quarter: " in capsys.readouterr().err
    cfg = tmp_path / "carbure.toml"
    cfg.write_text('[carbure]\nregistry = "r.sqlite"\ncloud = "missing.toml"\n[store]\npath = "s.sqlite"\n')
    assert main(["carbure", "quarter", "--quarter", "2025Q1", "--config", str(cfg)]) == 2
    assert f"{cfg}: carbure.cloud: no such file" in capsys.readouterr().err
