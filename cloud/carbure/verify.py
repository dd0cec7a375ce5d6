"""``quartier verify``: check an evidence bundle's signatures and recompute its figures from the raw batches.

What is checked, in order (see docs/carbure.md, "Evidence"):

1. each bundled public key has the key id the manifest lists (and, with a gateway registry, is enrolled);
2. each envelope is the batch the manifest names (gateway, seq) and its Ed25519 signature verifies with
   the bundled key of that gateway and key id;
3. each bundled payload is bound to its envelope's header (gateway, seq) and, with the cloud's private key,
   is exactly what the envelope decrypts to; without the key that link is reported as NOT CHECKED;
4. each point's figures are recomputed from the intervals of the batches that passed 2 and 3, with the
   same function as the quarterly file (:func:`cloud.carbure.readings.point_reading`), and compared with
   the manifest and, if given, with columns B to D of the quarterly xlsx.

A batch that fails 2 or 3 is left out of 4, so the figures it carried fail too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.carbure.cells import wh_to_kwh
from cloud.carbure.evidence import MANIFEST, Figure, Manifest, PointEvidence, carries, figures, read_manifest
from cloud.carbure.period import ddmmyyyy
from cloud.carbure.quarterly import file_rows, headers, read_quarterly
from cloud.carbure.readings import MAX_AGE_S, MeterSeries, PointReading, point_reading
from quartier import batch, envelope
from quartier.enrolment import GatewayEntry
from quartier.errors import EnvelopeError
from quartier.keys import KeyFileError, key_id, load_gateway_public
from quartier.series import INTERVAL_S, Direction, Interval, iso_utc


@dataclass
class Report:
    """The outcome: ``problems`` (any: exit 1), ``notes`` (what was checked, and what could not be)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _fmt(v: Figure) -> str:
    return "nothing" if v is None else str(v)


def _keys(bundle: Path, m: Manifest, gateways: dict[str, GatewayEntry] | None,
          rep: Report) -> dict[tuple[str, str], Ed25519PublicKey]:
    out: dict[tuple[str, str], Ed25519PublicKey] = {}
    for k in m.keys:
        try:
            pub = load_gateway_public(bundle / k.file)
        except KeyFileError as e:
            rep.problems.append(f"key {k.file} of gateway {k.gateway_id}: {e}")
            continue
        got = key_id(pub).hex()
        if got != k.key_id:
            rep.problems.append(f"key {k.file} of gateway {k.gateway_id}: its key id is {got}, "
                                f"the manifest lists {k.key_id} (a substituted key)")
            continue
        if gateways is not None:
            entry = gateways.get(k.gateway_id)
            if entry is None or entry.find(got) is None:
                rep.problems.append(f"key {k.file}: key id {got} is not enrolled for gateway {k.gateway_id} "
                                    "in the gateway registry given")
                continue
        out[(k.gateway_id, got)] = pub
    listed = ", ".join(f"{g}:{kid}" for g, kid in sorted(out))
    rep.notes.append(f"keys: {len(out)} of {len(m.keys)} public keys match their listed key ids ({listed})"
                     + ("; all enrolled in the gateway registry" if gateways is not None else
                        "; compare these key ids with the operator's enrolled keys (quartier keys list), "
                        "or pass --gateways"))
    return out


def _batches(bundle: Path, m: Manifest, keys: dict[tuple[str, str], Ed25519PublicKey],
             cloud_key: X25519PrivateKey | None, rep: Report) -> dict[tuple[str, int], list[Interval]]:
    """The intervals of every batch that passed the signature and payload checks, by (gateway, seq)."""
    good: dict[tuple[str, int], list[Interval]] = {}
    for b in m.batches:
        where = f"batch {b.name} ({b.envelope})"
        try:
            data = (bundle / b.envelope).read_bytes()
            plain = (bundle / b.payload).read_bytes()
        except OSError as e:
            rep.problems.append(f"{where}: cannot read {e.filename}: {e.strerror}")
            continue
        try:
            env = envelope.parse(data)
        except EnvelopeError as e:
            rep.problems.append(f"{where}: not a valid envelope: {e}")
            continue
        h = env.header
        if (h.gateway_id, h.seq) != (b.gateway_id, b.seq):
            rep.problems.append(f"{where}: the envelope file holds batch {h.gateway_id}#{h.seq}, "
                                f"the manifest says {b.name} (a substituted batch)")
            continue
        pub = keys.get((h.gateway_id, h.key_id.hex()))
        if pub is None:
            rep.problems.append(f"{where}: signed with key id {h.key_id.hex()}, and no verified key of gateway "
                                f"{h.gateway_id} in the bundle has that id")
            continue
        try:
            envelope.verify(env, pub)
        except EnvelopeError:
            rep.problems.append(f"{where}: the signature does not verify with key {h.key_id.hex()} "
                                "(the envelope was altered)")
            continue
        if cloud_key is not None:
            try:
                clear = envelope.decrypt(env, cloud_key)
            except EnvelopeError as e:
                rep.problems.append(f"{where}: {e.detail}")
                continue
            if clear != plain:
                rep.problems.append(f"{where}: the bundled payload {b.payload} differs from what the envelope "
                                    "decrypts to (the payload was altered)")
                continue
        try:
            good[(h.gateway_id, h.seq)] = batch.decode(plain, h.gateway_id, h.seq)
        except EnvelopeError as e:
            rep.problems.append(f"{where}: payload {b.payload}: {e.detail}")
    rep.notes.append(f"batches: {len(good)} of {len(m.batches)} signatures verified")
    rep.notes.append(
        "payloads: each compared with its decrypted envelope (--cloud-key)" if cloud_key is not None else
        "payloads: NOT CHECKED against the encrypted envelopes (no --cloud-key): the signatures prove the "
        "envelopes, but the figures below rest on the bundled payloads, which only the cloud key can tie to them")
    return good


class _Recomputed:
    """The series of every bundled meter, with the batch each valid interval came from."""

    def __init__(self, batches: dict[tuple[str, int], list[Interval]]) -> None:
        rows: dict[tuple[str, str], dict[int, tuple[int, Interval]]] = {}
        for (gw, seq), ivs in sorted(batches.items()):
            for iv in ivs:
                if iv.direction == Direction.IMPORT:
                    rows.setdefault((gw, iv.meter_id), {})[iv.start] = (seq, iv)  # the highest seq wins
        self.by_meter = rows
        self.series = {m: MeterSeries.from_intervals(iv for _, iv in r.values()) for m, r in rows.items()}

    def batch_at(self, gateway_id: str, meter_id: str, end: int | None) -> str:
        """``gw#seq`` of the batch carrying the meter's interval ending at ``end`` [s UTC]."""
        if end is None:
            return "no bundled batch"
        got = self.by_meter.get((gateway_id, meter_id), {}).get(end - INTERVAL_S)
        return f"batch {gateway_id}#{got[0]}" if got is not None else "no bundled batch"


def _provenance(r: PointReading, rc: _Recomputed, name: str) -> str:
    """Which batch a recomputed figure comes from, for messages."""
    if name.startswith("replacements["):
        i = int(name[len("replacements["):name.index("]")])
        x = r.replacements[i] if i < len(r.replacements) else None
        return "no bundled batch" if x is None else rc.batch_at(x.old_gateway_id, x.old_meter_id, x.old_final_at)
    if name in ("index_wh", "reading_at", "reading_date", "energy_wh", "load_factor", "meter"):
        return rc.batch_at(r.gateway_id, r.meter_id, r.reading_at)
    return "the manifest's declared inputs"


def _cited(p: PointEvidence, name: str) -> str:
    base = "index_wh" if name in ("reading_at", "reading_date", "energy_wh", "load_factor", "meter") else name
    base = base.replace("old_final_at", "old_final_wh")
    for s in p.sources:
        if s.figure == base:
            return f"batch {s.batch}"
    return "no batch"


def _point(p: PointEvidence, m: Manifest, rc: _Recomputed, rep: Report) -> PointReading:
    pid = p.point.point_id
    links = [x for x in p.links if x.point_id == pid]
    series = {(x.gateway_id, x.meter_id): rc.series[(x.gateway_id, x.meter_id)]
              for x in links if (x.gateway_id, x.meter_id) in rc.series}
    r = point_reading(p.point, links, series, m.quarter, p.previous, m.max_age_s)
    expected = figures(r)
    for name in list(expected) + [k for k in p.figures if k not in expected]:
        want, got = expected.get(name), p.figures.get(name)
        if name not in p.figures or want != got:
            found = _fmt(got) if name in p.figures else "no such figure"
            rep.problems.append(f"point {pid}: figure {name}: expected {_fmt(want)} (recomputed from "
                                f"{_provenance(r, rc, name)}), found {found} in the manifest (which cites "
                                f"{_cited(p, name)})")
    for s in p.sources:
        if s.figure == "previous_wh" and p.previous is not None:
            if s.seq is None:
                rep.notes.append(f"point {pid}: previous index {p.previous.index_wh} Wh (accepted reading "
                                 f"{p.previous.quarter}) is declared, no archived batch backs it")
                continue
            ivs = rc.by_meter.get((s.gateway_id, s.meter_id), {}).get(s.interval_start)
            got_iv = None if ivs is None else carries([ivs[1]], s.meter_id, s.interval_start)
            if got_iv is None or got_iv.index_end_wh != p.previous.index_wh or ivs is None or ivs[0] != s.seq:
                found = "nothing" if got_iv is None else f"{got_iv.index_end_wh} Wh"
                rep.problems.append(f"point {pid}: figure previous_wh: the accepted reading {p.previous.quarter} says "
                                    f"{p.previous.index_wh} Wh at {iso_utc(p.previous.reading_at)}, batch "
                                    f"{s.batch} carries {found} for meter {s.gateway_id}/{s.meter_id}")
        elif s.seq is not None and (s.gateway_id, s.meter_id) in rc.by_meter:
            held = rc.by_meter[(s.gateway_id, s.meter_id)].get(s.interval_start)
            if held is None or held[0] != s.seq:
                rep.problems.append(f"point {pid}: figure {s.figure}: the manifest cites batch {s.batch} for meter "
                                    f"{s.gateway_id}/{s.meter_id} at {iso_utc(s.interval_start)}, no verified bundled "
                                    "batch of that seq carries it")
    if p.previous is None:
        rep.notes.append(f"point {pid}: previous index is meter {links[0].gateway_id}/{links[0].meter_id}'s initial "
                         "index, declared by the meter mapping" if links else f"point {pid}: no meter declared")
    return r


def _xlsx(path: Path, m: Manifest, readings: Sequence[PointReading], rc: _Recomputed, rep: Report) -> None:
    rows = {r.point_id: r for r in read_quarterly(path, m.quarter)}
    hs = headers(m.quarter)
    by_id = {r.point.point_id: r for r in readings}
    for want in file_rows(readings):
        got = rows.pop(want.point_id, None)
        if got is None:
            rep.problems.append(f"{path}: point {want.point_id}: missing from the file")
            continue
        r = by_id[want.point_id]
        src = rc.batch_at(r.gateway_id, r.meter_id, r.reading_at)
        # (column, expected, found, how a value is shown): indexes in Wh, the reading as a date.
        columns: tuple[tuple[str, object, object, Callable[[Any], str]], ...] = (
            ("B", want.previous_wh, got.previous_wh, lambda v: f"{wh_to_kwh(v)} kWh"),
            ("C", want.index_wh, got.index_wh, lambda v: f"{wh_to_kwh(v)} kWh"),
            ("D", want.reading_date, got.reading_date, ddmmyyyy),
        )
        for col, w, g, show in columns:
            if w != g:
                c = "ABCD".index(col)
                origin = src if col != "B" else "the declared inputs"
                rep.problems.append(
                    f"{path}: row {got.row}, column {col} ({hs[c]}): point {want.point_id}: expected "
                    f"{'blank' if w is None else show(w)} (recomputed from {origin}),"
                    f" found {'blank' if g is None else show(g)}")
    for pid, extra in rows.items():
        rep.problems.append(f"{path}: row {extra.row}: point {pid} is not in the evidence bundle")
    rep.notes.append(f"xlsx: {path} compared with the recomputed figures, column B to D")


def verify_bundle(
    bundle: str | Path,
    cloud_key: X25519PrivateKey | None = None,
    xlsx: str | Path | None = None,
    gateways: dict[str, GatewayEntry] | None = None,
) -> Report:
    """Check the bundle in folder ``bundle``; every problem found is in the report (nothing raised for them).

    Raises :class:`~cloud.carbure.evidence.EvidenceError` or ConfigError when the manifest itself is
    unreadable or invalid, FileProblemsError when the xlsx is.
    """
    b = Path(bundle)
    m = read_manifest(b)
    rep = Report()
    if m.max_age_s != MAX_AGE_S:
        rep.problems.append(f"{b / MANIFEST}: max_age_s is {m.max_age_s}, quarterly readings take an index at most "
                            f"{MAX_AGE_S} s old")
    keys = _keys(b, m, gateways, rep)
    rc = _Recomputed(_batches(b, m, keys, cloud_key, rep))
    readings = [_point(p, m, rc, rep) for p in m.points]
    rep.notes.append(f"figures: {len(readings)} points recomputed from the verified batches "
                     f"(quarter {m.quarter}) and compared with the manifest")
    if xlsx is not None:
        _xlsx(Path(xlsx), m, readings, rc, rep)
    return rep
