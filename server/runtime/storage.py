"""Whether a failure is the storage's (the database or Redis cannot be used right now) rather
than a bug: the HTTP and Socket.IO handlers answer `unavailable` for it, the loops retry it.

It reads the exception types of the Redis and database clients, so it lives with the runtime,
not in the contract (which names the error codes and imports no I/O library)."""

from __future__ import annotations

import redis.exceptions as redis_exc
import sqlalchemy.exc as sa_exc


def storage_unavailable(exc: BaseException) -> bool:
    """Whether an exception means the database or Redis cannot be used right now (`unavailable`),
    as opposed to a bug. A constraint or a statement the database refuses is a bug."""
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.ProgrammingError | sa_exc.DataError):
        return False
    return isinstance(
        exc, sa_exc.DBAPIError | sa_exc.TimeoutError | redis_exc.ConnectionError | redis_exc.TimeoutError | OSError
    )
