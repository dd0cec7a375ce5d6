"""The evidence bundle of a quarter: the signed gateway batches behind every figure of the quarterly file.

A bundle is a folder ``carbure-2025Q1-evidence/`` next to the quarterly file::

    manifest.json                 what the bundle claims (format below)
    batches/<gateway>-<seq>.qrt   each archived envelope, byte for byte as the gateway sent it
    payloads/<gateway>-<seq>.json its decrypted payload (the envelope is encrypted to the cloud's key)
    keys/<gateway>-<key id>.pub   the gateway public keys (PEM) that signed them

``manifest.json`` (times ISO UTC, energies in Wh as integers)::

    {"format": "quartier-carbure-evidence/1", "quarter": "2025Q1", "max_age_s": 604800,
     "keys": [{"gateway": "gw-1", "key_id": "<16 hex>", "file": "keys/gw-1-<key id>.pub"}],
     "batches": [{"gateway": "gw-1", "seq": 12, "envelope": "batches/gw-1-12.qrt",
                  "payload": "payloads/gw-1-12.json"}],
     "points": [{"point": {...ChargePoint...}, "meters": [{...MeterLink...}], "previous": {...} | null,
                 "figures": {"index_wh": 7159123, ...}, "sources": [{"figure": "index_wh", "gateway": "gw-1",
                 "meter": "cp1", "interval_start": "2025-03-31T21:45:00Z", "seq": 12}]}]}

``figures`` are :func:`figures` of the point's reading; ``sources`` say which
interval (and which batch, ``seq`` null when none was archived) each index
figure comes from. The point, its meters and its previous accepted reading are
*declared* inputs (the registry's), not proven by any signature.

This module holds the format (pure) and the writer (ledger, keys: I/O); the
checks are in :mod:`cloud.carbure.verify`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.carbure.errors import CarbureError, EvidenceError
from cloud.carbure.period import Quarter, ddmmyyyy, paris_date
from cloud.carbure.readings import MAX_AGE_S, VALID_QUALITIES, PointReading
from cloud.carbure.registry import AcceptedReading, ChargePoint, CurrentType, MeterLink, Registry
from cloud.ledger import Ledger
from quartier import batch, envelope
from quartier.config import Table
from quartier.enrolment import GatewayEntry
from quartier.errors import ConfigError, EnvelopeError
from quartier.series import INTERVAL_S, Direction, Interval, iso_utc, parse_utc

FORMAT = "quartier-carbure-evidence/1"
MANIFEST = "manifest.json"

Figure = int | str | None


# --- figures and sources (pure) -------------------------------------------------------------------------------


def figures(r: PointReading) -> dict[str, Figure]:
    """The figures of a reading an auditor checks, flat: energies and indexes [Wh], times ISO UTC.

    ``file_previous_wh``, ``index_wh`` and ``reading_date`` are columns B, C and D of the quarterly file;
    ``replacements[i].old_final_wh`` is the old meter's final index of the i-th meter change. A missing
    value is None (no reading: ``index_wh`` ... are None).
    """
    def t(v: int | None) -> str | None:
        return None if v is None else iso_utc(v)

    out: dict[str, Figure] = {
        "previous_wh": r.previous_wh,
        "previous_at": t(r.previous_at),
        "file_previous_wh": r.file_previous_wh,
        "meter": f"{r.gateway_id}/{r.meter_id}" if r.meter_id else None,
        "index_wh": r.index_wh,
        "reading_at": t(r.reading_at),
        "reading_date": None if r.reading_at is None else ddmmyyyy(paris_date(r.reading_at)),
        "energy_wh": r.energy_wh,
        "load_factor": None if r.load_factor is None else str(r.load_factor),
    }
    for i, x in enumerate(r.replacements):
        out[f"replacements[{i}].old_meter"] = f"{x.old_gateway_id}/{x.old_meter_id}"
        out[f"replacements[{i}].old_final_wh"] = x.old_final_wh
        out[f"replacements[{i}].old_final_at"] = t(x.old_final_at)
        out[f"replacements[{i}].new_initial_wh"] = x.new_initial_wh
    return out


@dataclass(frozen=True)
class Source:
    """The interval an index figure was read from, and the archived batch carrying it (None: not archived).

    ``interval_start`` [s UTC]; the figure is that interval's ``index_end_wh`` [Wh].
    """

    figure: str
    gateway_id: str
    meter_id: str
    interval_start: int
    seq: int | None = None

    @property
    def batch(self) -> str:
        return f"{self.gateway_id}#{self.seq}" if self.seq is not None else "(no archived batch)"


def needed_sources(r: PointReading, previous: AcceptedReading | None) -> list[tuple[Source, int]]:
    """Each index figure of ``r`` with the interval it must come from, and its value [Wh].

    The index at the boundary, each old meter's final index before a replacement, and the previous
    accepted reading's index (when the previous index is an accepted reading, not a meter's initial index).
    """
    out: list[tuple[Source, int]] = []
    if r.index_wh is not None and r.reading_at is not None:
        out.append((Source("index_wh", r.gateway_id, r.meter_id, r.reading_at - INTERVAL_S), r.index_wh))
    for i, x in enumerate(r.replacements):
        if x.old_final_wh is not None and x.old_final_at is not None:
            out.append((Source(f"replacements[{i}].old_final_wh", x.old_gateway_id, x.old_meter_id,
                               x.old_final_at - INTERVAL_S), x.old_final_wh))
    if previous is not None:
        out.append((Source("previous_wh", previous.gateway_id, previous.meter_id,
                           previous.reading_at - INTERVAL_S), previous.index_wh))
    return out


def carries(intervals: Sequence[Interval], meter_id: str, start: int, index_wh: int | None = None) -> Interval | None:
    """The valid import interval of ``meter_id`` starting at ``start`` [s UTC] (with that end index [Wh]), or None."""
    for iv in intervals:
        if (iv.meter_id == meter_id and iv.start == start and iv.direction == Direction.IMPORT
                and iv.quality in VALID_QUALITIES and iv.index_end_wh is not None
                and (index_wh is None or iv.index_end_wh == index_wh)):
            return iv
    return None


# --- the manifest's records, both ways --------------------------------------------------------------------------


def point_json(p: ChargePoint) -> dict[str, Any]:
    return {"point_id": p.point_id, "installed_on": p.installed_on.isoformat(), "mid_certificate": p.mid_certificate,
            "measure_date": p.measure_date.isoformat(), "measure_energy_wh": p.measure_energy_wh, "prm": p.prm,
            "current_type": p.current_type.value, "article2": p.article2,
            "nominal_power_kw": str(p.nominal_power_kw), "station_id": p.station_id}


def link_json(x: MeterLink) -> dict[str, Any]:
    return {"gateway": x.gateway_id, "meter": x.meter_id, "meter_model": x.meter_model,
            "mid_meter_id": x.mid_meter_id, "initial_index_wh": x.initial_index_wh,
            "installed_at": iso_utc(x.installed_at), "station_id": x.station_id}


def previous_json(a: AcceptedReading | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"quarter": a.quarter, "reading_at": iso_utc(a.reading_at), "index_wh": a.index_wh,
            "gateway": a.gateway_id, "meter": a.meter_id}


def source_json(s: Source) -> dict[str, Any]:
    return {"figure": s.figure, "gateway": s.gateway_id, "meter": s.meter_id,
            "interval_start": iso_utc(s.interval_start), "seq": s.seq}


@dataclass(frozen=True)
class KeyEntry:
    gateway_id: str
    key_id: str
    file: str


@dataclass(frozen=True)
class BatchEntry:
    gateway_id: str
    seq: int
    envelope: str
    payload: str

    @property
    def name(self) -> str:
        return f"{self.gateway_id}#{self.seq}"


@dataclass(frozen=True)
class PointEvidence:
    point: ChargePoint
    links: tuple[MeterLink, ...]
    previous: AcceptedReading | None
    figures: dict[str, Figure]
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Manifest:
    quarter: Quarter
    max_age_s: int
    keys: tuple[KeyEntry, ...]
    batches: tuple[BatchEntry, ...]
    points: tuple[PointEvidence, ...]


def _time(t: Table, name: str) -> int:
    v = t.str(name)
    try:
        return parse_utc(v)
    except ValueError as e:
        raise t.error(name, f"not an ISO UTC time ({e})") from None


def _date(t: Table, name: str) -> date:
    v = t.str(name)
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise t.error(name, f"not a date AAAA-MM-JJ: {v!r}") from None


def _file(t: Table, name: str) -> str:
    v = t.str(name)
    if Path(v).is_absolute() or ".." in Path(v).parts:
        raise t.error(name, f"must be a path inside the bundle, got {v!r}")
    return v


def _figures(t: Table) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    for k, v in t.raw().items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | str)):
            raise t.error(k, f"must be a whole number, a text or null, got {v!r}")
        out[k] = v
    return out


def _point(t: Table) -> PointEvidence:
    p = t.table("point")
    try:
        kw = Decimal(p.str("nominal_power_kw"))
    except InvalidOperation:
        raise p.error("nominal_power_kw", "not a number") from None
    point = ChargePoint(p.str("point_id"), _date(p, "installed_on"), p.str("mid_certificate", ""),
                        _date(p, "measure_date"), p.int("measure_energy_wh"), p.str("prm", ""),
                        CurrentType(p.str("current_type", choices=tuple(c.value for c in CurrentType))),
                        p.bool("article2"), kw, p.str("station_id", ""))
    p.done()
    links = []
    for m in t.tables("meters"):
        links.append(MeterLink(point.point_id, m.str("gateway"), m.str("meter"), m.str("meter_model", ""),
                               m.str("mid_meter_id", ""), m.int("initial_index_wh"), _time(m, "installed_at"),
                               m.str("station_id", "")))
        m.done()
    previous = None
    if t.data.get("previous") is not None:
        a = t.table("previous")
        previous = AcceptedReading(point.point_id, a.str("quarter"), _time(a, "reading_at"), a.int("index_wh"),
                                   a.str("gateway"), a.str("meter"))
        a.done()
    else:
        t.accept("previous")
    sources = []
    for s in t.tables("sources"):
        seq = s.int("seq", lo=1) if s.data.get("seq") is not None else None
        s.accept("seq")
        sources.append(Source(s.str("figure"), s.str("gateway"), s.str("meter"), _time(s, "interval_start"), seq))
        s.done()
    ev = PointEvidence(point, tuple(links), previous, _figures(t.table("figures")), tuple(sources))
    t.done()
    return ev


def read_manifest(bundle: Path) -> Manifest:
    """Parse and validate ``bundle/manifest.json``; errors ``FILE: dotted.key: problem``, unknown keys refused."""
    path = bundle / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EvidenceError(f"{path}: cannot read the manifest: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(path, "", f"not valid JSON: {e}") from None
    root = Table(raw, path)
    fmt = root.str("format")
    if fmt != FORMAT:
        raise root.error("format", f"is {fmt!r}, this Quartier reads {FORMAT!r}")
    try:
        quarter = Quarter.parse(root.str("quarter"))
    except CarbureError as e:
        raise root.error("quarter", str(e)) from None
    max_age = root.int("max_age_s", lo=0)
    keys = []
    for k in root.tables("keys"):
        keys.append(KeyEntry(k.str("gateway"), k.str("key_id").lower(), _file(k, "file")))
        k.done()
    batches = []
    for b in root.tables("batches"):
        batches.append(BatchEntry(b.str("gateway"), b.int("seq", lo=1), _file(b, "envelope"), _file(b, "payload")))
        b.done()
    points = tuple(_point(t) for t in root.tables("points"))
    root.done()
    return Manifest(quarter, max_age, tuple(keys), tuple(batches), points)


# --- the writer (I/O) --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleResult:
    """Where the bundle was written, how many batches it holds, the figures no archived batch backs
    (``problems``) and the previous indexes that are declared only (``notes``: an accepted reading whose
    interval was never archived, e.g. read before the meter reported to Quartier)."""

    path: Path
    n_batches: int
    problems: list[str]
    notes: list[str]


class _Archive:
    """Archived envelopes of the ledger, verified with the enrolled key and decrypted once each."""

    def __init__(self, ledger: Ledger, gateways: Mapping[str, GatewayEntry], cloud_key: X25519PrivateKey) -> None:
        self.ledger = ledger
        self.gateways = gateways
        self.cloud_key = cloud_key
        self.opened: dict[tuple[str, int], tuple[bytes, bytes, list[Interval], str]] = {}

    def find(self, src: Source, index_wh: int) -> tuple[int | None, list[str]]:
        """The highest seq of an archived batch carrying ``src``'s interval with ``index_wh`` [Wh], or None.

        A batch is opened only after its signature verifies with the enrolled key; the others are reported.
        """
        found, problems = None, []
        for seq, data in self.ledger.archived(src.gateway_id, src.interval_start, src.interval_start + 1):
            key = (src.gateway_id, seq)
            if key not in self.opened:
                try:
                    env = envelope.parse(data)
                    entry = self.gateways.get(src.gateway_id)
                    enrolled = entry.find(env.header.key_id) if entry is not None else None
                    if enrolled is None:
                        raise EnvelopeError("unknown-key", f"key id {env.header.key_id.hex()} is not enrolled")
                    envelope.verify(env, enrolled.public_key)
                    plain = envelope.decrypt(env, self.cloud_key)
                    ivs = batch.decode(plain, src.gateway_id, seq)
                except EnvelopeError as e:
                    problems.append(f"archived batch {src.gateway_id}#{seq} left out: {e}")
                    continue
                self.opened[key] = (data, plain, ivs, enrolled.key_id)
            if carries(self.opened[key][2], src.meter_id, src.interval_start, index_wh) is not None:
                found = seq
        return found, problems


def write_bundle(
    quarter: Quarter,
    readings: Sequence[PointReading],
    registry: Registry,
    ledger: Ledger,
    gateways: Mapping[str, GatewayEntry],
    cloud_key: X25519PrivateKey,
    out_dir: str | Path,
    max_age_s: int = MAX_AGE_S,
) -> BundleResult:
    """Write ``carbure-<quarter>-evidence/`` in ``out_dir`` for ``readings`` (replacing an older bundle).

    ``ledger``: the cloud's ledger (archived envelopes); ``gateways``: the gateway registry (public keys);
    ``cloud_key``: decrypts the archived envelopes into the bundled payloads. A figure whose interval no
    archived batch carries is listed in ``problems`` (``quartier verify`` will then fail on it).
    """
    archive = _Archive(ledger, gateways, cloud_key)
    problems: list[str] = []
    notes: list[str] = []
    points: list[dict[str, Any]] = []
    used: set[tuple[str, int]] = set()
    for r in sorted(readings, key=lambda x: x.point.point_id):
        pid = r.point.point_id
        previous = registry.last_accepted(pid, before=quarter.boundary_utc)
        sources = []
        for src, value in needed_sources(r, previous):
            seq, why = archive.find(src, value)
            problems.extend(f"point {pid}: {w}" for w in why)
            if seq is None:
                (notes if src.figure == "previous_wh" else problems).append(
                    f"point {pid}: {src.figure}: no archived batch of gateway {src.gateway_id} carries "
                    f"meter {src.meter_id}'s interval at {iso_utc(src.interval_start)} with index {value} Wh")
            else:
                used.add((src.gateway_id, seq))
            sources.append(Source(src.figure, src.gateway_id, src.meter_id, src.interval_start, seq))
        points.append({"point": point_json(r.point), "meters": [link_json(x) for x in registry.links(pid)],
                       "previous": previous_json(previous), "figures": figures(r),
                       "sources": [source_json(s) for s in sources]})

    final = Path(out_dir) / f"carbure-{quarter}-evidence"
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("batches", "payloads", "keys"):
        (tmp / sub).mkdir(parents=True)
    batches, keys = [], {}
    for gw, seq in sorted(used):
        data, plain, _, kid = archive.opened[(gw, seq)]
        envelope, payload = f"batches/{gw}-{seq}.qrt", f"payloads/{gw}-{seq}.json"
        entry = {"gateway": gw, "seq": seq, "envelope": envelope, "payload": payload}
        (tmp / envelope).write_bytes(data)
        (tmp / payload).write_bytes(plain)
        batches.append(entry)
        if (gw, kid) not in keys:
            enrolled = gateways[gw].find(kid)
            assert enrolled is not None  # found when the batch was opened
            f = f"keys/{gw}-{kid}.pub"
            (tmp / f).write_bytes(enrolled.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            keys[(gw, kid)] = {"gateway": gw, "key_id": kid, "file": f}
    doc = {"format": FORMAT, "quarter": str(quarter), "max_age_s": max_age_s, "keys": list(keys.values()),
           "batches": batches, "points": points}
    (tmp / MANIFEST).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if final.exists():
        if not (final / MANIFEST).exists():
            raise EvidenceError(f"{final} exists and is not an evidence bundle: move it away")
        shutil.rmtree(final)
    tmp.rename(final)
    return BundleResult(final, len(batches), problems, notes)
