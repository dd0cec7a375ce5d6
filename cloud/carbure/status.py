"""A quarterly file's life: its status, the allowed transitions, and the deadline warning (pure).

``draft`` (prepared, some check failed or a reading is missing) → ``ready`` (every
check passed) → ``submitted`` (handed to the submitter) → ``accepted`` or
``rejected`` (with CarbuRe's reason). A draft or ready file may be prepared again
(back to draft/ready); a rejected one too, after a fix. An accepted file is final.
"""

from __future__ import annotations

import enum
from datetime import date

from cloud.carbure.errors import CarbureError
from cloud.carbure.period import Quarter


class FileStatus(str, enum.Enum):
    DRAFT = "draft"
    READY = "ready"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


_PREPARABLE = {None, FileStatus.DRAFT, FileStatus.READY, FileStatus.REJECTED}
_ALLOWED: dict[FileStatus, set[FileStatus | None]] = {
    FileStatus.DRAFT: _PREPARABLE,
    FileStatus.READY: _PREPARABLE,
    FileStatus.SUBMITTED: {FileStatus.READY},
    FileStatus.ACCEPTED: {FileStatus.SUBMITTED},
    FileStatus.REJECTED: {FileStatus.SUBMITTED},
}

WARN_DAYS = 5
"""Days before the deadline from which an unsubmitted quarter is warned about. [d]"""


class StatusError(CarbureError):
    """A status change that the file's life does not allow (e.g. accepting a draft)."""


def check_transition(quarter: Quarter, current: FileStatus | None, new: FileStatus, reason: str = "") -> None:
    """Raise StatusError unless ``current`` → ``new`` is allowed; a rejection needs its reason."""
    if current not in _ALLOWED[new]:
        now = current.value if current else "not prepared"
        raise StatusError(f"quarter {quarter}: cannot go from {now} to {new.value}"
                          + (" (prepare it again first)" if current is FileStatus.ACCEPTED else ""))
    if new is FileStatus.REJECTED and not reason.strip():
        raise StatusError(f"quarter {quarter}: a rejection needs CarbuRe's reason (--reason)")


def deadline_notice(quarter: Quarter, status: FileStatus | None, today: date, warn_days: int = WARN_DAYS) -> str | None:
    """A warning when the quarter is closed, not yet submitted, and its deadline is near or past; else None.

    ``today`` is the local (Europe/Paris) date. Nothing before the quarter's
    boundary day, nor once the file is submitted or accepted.
    """
    if status in (FileStatus.SUBMITTED, FileStatus.ACCEPTED) or today < quarter.boundary_day:
        return None
    left = (quarter.deadline - today).days
    now = status.value if status else "not prepared"
    if left < 0:
        return f"quarter {quarter}: OVERDUE since {quarter.deadline:%d/%m/%Y} ({-left} days), file {now}"
    if left <= warn_days:
        days = f"{left} day{'s' if left != 1 else ''}"
        return f"quarter {quarter}: due {quarter.deadline:%d/%m/%Y}, {days} left, file {now}"
    return None


def due_quarter(today: date) -> Quarter:
    """The quarter whose readings are due next on local date ``today``: the last closed one."""
    return Quarter.containing(today).previous()
