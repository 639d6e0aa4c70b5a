"""The transaction every ticket operation runs in: one unit of work on the session it is given.

`unit_of_work(session)` guarantees that what the block did is committed when it returns normally and
rolled back when it raises (any exception, `KeyboardInterrupt` included), so a ticket function never
leaves a half-done change behind nor a transaction open on its caller's session. Objects read inside
stay readable after the commit: `Database` sessions do not expire them on commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def unit_of_work(session: Session) -> Iterator[None]:
    """Commit what the block did on `session`, or roll it back if the block raises."""
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
