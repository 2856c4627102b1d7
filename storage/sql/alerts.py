"""The e-mail alerts' outbox on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from custody.alerts import Alert
from custody.errors import StorageError
from custody.interfaces import AppendTransaction
from storage.sql.ledger import connection_of
from storage.sql.orders import SqlOutbox
from storage.sql.schema import alerts


def _alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        recipient=row.recipient,
        subject=row.subject,
        body=row.body,
        key=row.once_key,
        created_at=row.created_at,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


def _values(alert: Alert) -> dict[str, Any]:
    return {
        "order_id": alert.order_id,
        "kind": alert.kind,
        "recipient": alert.recipient,
        "subject": alert.subject,
        "body": alert.body,
        "once_key": alert.key,
        "created_at": alert.created_at,
        "state": alert.state,
        "attempts": alert.attempts,
        "next_attempt_at": alert.next_attempt_at,
        "delivered_at": alert.delivered_at,
        "last_error": alert.last_error,
    }


class SqlAlertStore(SqlOutbox):
    """``custody.alerts.AlertStore`` on SQLite or PostgreSQL."""

    table = alerts

    def message(self, row: Any) -> Alert:
        return _alert(row)

    def add(self, tx: AppendTransaction, new: Sequence[Alert]) -> None:
        connection_of(tx).execute(insert(alerts), [_values(a) for a in new])

    def add_once(self, new: Sequence[Alert]) -> int:
        added = 0
        for alert in new:
            keyed = select(alerts.c.id).where(alerts.c.once_key == alert.key)
            try:
                with self._connect(write=True) as c:
                    if c.execute(keyed).first() is not None:
                        continue
                    c.execute(insert(alerts).values(**_values(alert)))
            except StorageError as exc:
                if isinstance(exc.__cause__, IntegrityError):
                    continue  # another worker wrote it meanwhile
                raise
            added += 1
        return added

    def for_order(self, order_id: str) -> list[Alert]:
        query = select(alerts).where(alerts.c.order_id == order_id).order_by(alerts.c.id)
        return [_alert(r) for r in self._rows(query)]
