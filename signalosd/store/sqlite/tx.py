"""SqliteTx: one SQLite transaction with the daemon's queries as methods (the store
interface's Tx, store/tx.py).

A Tx is handed to a whole-transaction function that runs on the store's thread, so domain code
reads the row, decides (with the pure rules in `domain/rules.py`) and writes, atomically,
without writing SQL. Events appended here are published by the database only after COMMIT.
"""

from __future__ import annotations

from typing import Any

from signalosd.models import EventType
from signalosd.store.sqlite.commands import CommandsSql
from signalosd.store.sqlite.history import HistorySql
from signalosd.store.sqlite.retention import RetentionSql
from signalosd.store.sqlite.risk import RiskSql
from signalosd.store.sqlite.trades import TradesSql
from signalosd.store.sqlite.webhooks import WebhooksSql


class SqliteTx(TradesSql, CommandsSql, RetentionSql, HistorySql, RiskSql, WebhooksSql):
    """All the daemon's queries inside one transaction (accounts, tokens, mode, idempotency
    here; events in base.py, trades and signals in trades.py, the outbox in commands.py,
    bounded retention in retention.py, the account history behind the equity chart in
    history.py, the risk guard's limits and memory in risk.py, the outgoing webhooks in
    webhooks.py)."""

    # ---- accounts -------------------------------------------------------------------------

    def has_accounts(self) -> bool:
        return self.conn.execute("SELECT 1 FROM accounts LIMIT 1").fetchone() is not None

    def account_by_name(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT id, name FROM accounts WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def account_id_of(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def list_accounts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT id, name FROM accounts ORDER BY id")]

    def create_account(self, name: str, actor: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO accounts (name, created_at) VALUES (?, ?)", (name, self.now)
        )
        account_id = int(cur.lastrowid or 0)
        self.conn.execute(
            "INSERT INTO trading_state (account_id, mode, stealth, since) "
            "VALUES (?, 'running', 0, ?)",
            (account_id, self.now),
        )
        self.append_event(account_id, EventType.ACCOUNT_CREATED, {"account": name}, actor)
        return account_id

    # ---- tokens ---------------------------------------------------------------------------

    def insert_token(
        self, token_id: str, account_id: int, role: str, label: str, token_hash: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO tokens (id, account_id, role, label, hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, account_id, role, label, token_hash, self.now),
        )

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT t.id, t.account_id, a.name AS account, t.role, t.label, t.hash, "
            "t.last_used_at, t.revoked_at FROM tokens t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.hash = ?",
            (token_hash,),
        ).fetchone()
        return dict(row) if row else None

    def token_active(self, token_id: str) -> bool:
        """False once the token is revoked (or gone): a session opened with it must stop."""
        row = self.conn.execute(
            "SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        return row is not None and row[0] is None

    def touch_token(self, token_id: str) -> None:
        self.conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (self.now, token_id))

    def revoke_token(self, token_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, account_id, role, label, revoked_at FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        if row is None:
            return None
        if row["revoked_at"] is None:
            self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (self.now, token_id))
        return dict(row)

    def list_tokens(self, account_id: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT t.id, a.name AS account, t.role, t.label, t.created_at, t.last_used_at, "
            "t.revoked_at FROM tokens t JOIN accounts a ON a.id = t.account_id"
        )
        args: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE t.account_id = ?"
            args = (account_id,)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY t.created_at, t.id", args)]

    # ---- trading state --------------------------------------------------------------------

    def get_state(self, account_id: int) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT a.name AS account, s.mode, s.stealth, s.reason, s.since, s.halt_gen "
            "FROM trading_state s JOIN accounts a ON a.id = s.account_id WHERE s.account_id = ?",
            (account_id,),
        ).fetchone()
        d = dict(row)
        d["stealth"] = bool(d["stealth"])
        return d

    def set_mode(self, account_id: int, mode: str, reason: str | None) -> None:
        self.conn.execute(
            "UPDATE trading_state SET mode = ?, reason = ?, since = ? WHERE account_id = ?",
            (mode, reason, self.now, account_id),
        )

    def raise_halt_gen(self, account_id: int, at_least: int) -> None:
        """Never let the halt generation go down (a restore from an older backup)."""
        self.conn.execute(
            "UPDATE trading_state SET halt_gen = max(halt_gen, ?) WHERE account_id = ?",
            (at_least, account_id),
        )

    def next_halt_gen(self, account_id: int) -> int:
        """Start the account's next halt generation (an emergency stop); return it."""
        row = self.conn.execute(
            "UPDATE trading_state SET halt_gen = halt_gen + 1 WHERE account_id = ? "
            "RETURNING halt_gen",
            (account_id,),
        ).fetchone()
        return int(row[0])

    def set_stealth(self, account_id: int, enabled: bool) -> None:
        self.conn.execute(
            "UPDATE trading_state SET stealth = ? WHERE account_id = ?", (int(enabled), account_id)
        )

    # ---- idempotency ----------------------------------------------------------------------

    def idempotent_reply(self, account_id: int, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT fingerprint, status, body FROM idempotency WHERE account_id = ? AND key = ?",
            (account_id, key),
        ).fetchone()
        return dict(row) if row else None

    def save_idempotent_reply(
        self, account_id: int, key: str, fingerprint: str, status: int, body: bytes
    ) -> None:
        self.conn.execute(
            "INSERT INTO idempotency (account_id, key, fingerprint, status, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, key, fingerprint, status, body, self.now),
        )
