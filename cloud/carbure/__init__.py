"""Charge-point operators: the CarbuRe registry, quarterly index readings, evidence for auditors.

Pure computation: :mod:`period` (quarters, Europe/Paris), :mod:`cells` (cell parsing,
kWh rounding), :mod:`readings` (index at the boundary, meter changes, missing data),
:mod:`checks` (CarbuRe's checks), :mod:`status` (file statuses, deadline),
:mod:`volumes` (renewable credits, transfers).
I/O: :mod:`registry`, :mod:`tracking`, :mod:`volume_store` (SQLite), :mod:`xlsx`
(registration file), :mod:`mapping` (meter mapping CSV), :mod:`irve` (IRVE CSV),
:mod:`quarterly` (quarterly file, summary), :mod:`prepare` (store → files),
:mod:`evidence` (evidence bundle), :mod:`verify` (``quartier verify``),
:mod:`submit`, :mod:`config`, :mod:`command`. See docs/carbure.md.
"""
