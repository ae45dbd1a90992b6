"""One error hierarchy for the whole server, each class mapped to a PostgreSQL SQLSTATE.

Anything raised to a client is a ``SqlError``; its ``message`` is safe to show.
"""

from __future__ import annotations


class SqlError(Exception):
    sqlstate = "XX000"
    severity = "ERROR"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        where: str | None = None,
        node: object | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position
        self.where = where  # context line (ErrorResponse 'W'), e.g. 'COPY t, line 3, column x: "abc"'
        # the syntax node the error is about (a sqlglot expression); engine.positions turns it
        # into ``position`` (1-based character offset into the query text) on the error path
        self.node = node


class FeatureNotSupported(SqlError):
    sqlstate = "0A000"


class SyntaxErr(SqlError):
    sqlstate = "42601"


class UndefinedTable(SqlError):
    sqlstate = "42P01"


class UndefinedColumn(SqlError):
    sqlstate = "42703"


class UndefinedFunction(SqlError):
    sqlstate = "42883"


class DuplicateTable(SqlError):
    sqlstate = "42P07"


class DuplicateObject(SqlError):
    sqlstate = "42710"


class AmbiguousColumn(SqlError):
    sqlstate = "42702"


class DatatypeMismatch(SqlError):
    sqlstate = "42804"


class InvalidTextRepresentation(SqlError):
    sqlstate = "22P02"


class NumericOutOfRange(SqlError):
    sqlstate = "22003"


class DivisionByZero(SqlError):
    sqlstate = "22012"


class StringTooLong(SqlError):
    sqlstate = "22001"


class NotNullViolation(SqlError):
    sqlstate = "23502"


class UniqueViolation(SqlError):
    sqlstate = "23505"


class ForeignKeyViolation(SqlError):
    sqlstate = "23503"


class CheckViolation(SqlError):
    sqlstate = "23514"


class ReadOnlyTransaction(SqlError):
    sqlstate = "25006"


class InFailedTransaction(SqlError):
    sqlstate = "25P02"


class SerializationFailure(SqlError):
    sqlstate = "40001"
    retryable = True


class DeadlockDetected(SqlError):
    sqlstate = "40P01"
    retryable = True


class QueryCanceled(SqlError):
    sqlstate = "57014"


class ProtocolViolation(SqlError):
    sqlstate = "08P01"


class InvalidPassword(SqlError):
    sqlstate = "28P01"
    severity = "FATAL"


class InvalidAuthorization(SqlError):
    sqlstate = "28000"
    severity = "FATAL"


class UndefinedDatabase(SqlError):
    sqlstate = "3D000"
    severity = "FATAL"


class StorageUnavailable(SqlError):
    """The volume could not reach a quorum in time; nothing was acknowledged."""

    sqlstate = "58030"  # io_error
    retryable = True


class TransactionResolutionUnknown(StorageUnavailable):
    """A commit whose records reached storage but whose durability could not be confirmed
    (no write quorum for ``commit_timeout``, or the writer was fenced while it waited).  The
    records stay queued, so the transaction may still become durable when storage recovers:
    the client must not assume either outcome (docs/durability.md)."""

    sqlstate = "08007"  # transaction_resolution_unknown
    retryable = False


class AdminShutdown(SqlError):
    sqlstate = "57P01"
    severity = "FATAL"


class InternalError(SqlError):
    sqlstate = "XX000"


class LockNotAvailable(SqlError):
    sqlstate = "55P03"


class SavepointNotFound(SqlError):
    sqlstate = "3B001"


class NoActiveTransaction(SqlError):
    sqlstate = "25P01"
