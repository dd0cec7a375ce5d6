"""Submitting a quarterly file: a small pluggable interface; today, an outbox folder.

A :class:`Submitter` hands a file to CarbuRe and returns a receipt (a text to
keep with the file's status). :class:`OutboxSubmitter` copies the file into a
folder (from which a person uploads it) and returns the copy's path; an API
submitter can take its place without changing the callers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

from cloud.carbure.errors import CarbureError
from cloud.carbure.period import Quarter


class Submitter(Protocol):
    def submit(self, quarter: Quarter, xlsx: Path) -> str:
        """Hand ``xlsx`` over for ``quarter``; the receipt. Raises CarbureError on failure."""
        ...


class OutboxSubmitter:
    """Copies the file to ``outbox/carbure-<quarter>.xlsx``; refuses to overwrite a submitted file."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def submit(self, quarter: Quarter, xlsx: Path) -> str:
        self.outbox.mkdir(parents=True, exist_ok=True)
        dest = self.outbox / f"carbure-{quarter}.xlsx"
        if dest.exists():
            raise CarbureError(f"{dest}: a file for {quarter} is already in the outbox; remove it to submit again")
        if not xlsx.is_file():
            raise CarbureError(f"{xlsx}: no quarterly file to submit (prepare the quarter first)")
        shutil.copyfile(xlsx, dest)
        return f"outbox:{dest}"
