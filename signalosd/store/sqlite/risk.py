"""Risk-guard queries (store/risk.py): one row per account in each of `risk_limits` and
`risk_memory`, the object as strict JSON text."""

from __future__ import annotations

import json
from typing import Any

from signalosd.store.records import dumps
from signalosd.store.sqlite.base import TxBase


class RiskSql(TxBase):
    def risk_limits(self, account_id: int) -> dict[str, Any] | None:
        return self._risk_object("risk_limits", "limits", account_id)

    def set_risk_limits(self, account_id: int, limits: dict[str, Any]) -> None:
        self._save_risk_object("risk_limits", "limits", account_id, limits)

    def risk_memory(self, account_id: int) -> dict[str, Any] | None:
        return self._risk_object("risk_memory", "memory", account_id)

    def save_risk_memory(self, account_id: int, memory: dict[str, Any]) -> None:
        self._save_risk_object("risk_memory", "memory", account_id, memory)

    def guarded_accounts(self) -> list[tuple[int, dict[str, Any], dict[str, Any] | None]]:
        rows = self.conn.execute(
            "SELECT l.account_id, l.limits, m.memory FROM risk_limits l "
            "LEFT JOIN risk_memory m ON m.account_id = l.account_id ORDER BY l.account_id"
        ).fetchall()
        return [
            (int(r[0]), dict(json.loads(r[1])), None if r[2] is None else dict(json.loads(r[2])))
            for r in rows
        ]

    def count_live_trades(self, account_id: int) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM trades WHERE account_id = ? "
            "AND status IN ('pending', 'open', 'closing')",
            (account_id,),
        ).fetchone()
        return int(row[0])

    # The table and column names below are the two pairs above, never a caller's text.

    def _risk_object(self, table: str, column: str, account_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {column} FROM {table} WHERE account_id = ?", (account_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _save_risk_object(
        self, table: str, column: str, account_id: int, value: dict[str, Any]
    ) -> None:
        self.conn.execute(
            f"INSERT INTO {table} (account_id, {column}, updated_at) VALUES (?, ?, ?) "
            f"ON CONFLICT (account_id) DO UPDATE SET {column} = excluded.{column}, "
            "updated_at = excluded.updated_at",
            (account_id, dumps(value), self.now),
        )
