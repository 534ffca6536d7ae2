"""Account, token, trading-state and idempotency queries of the store interface (Tx)."""

from __future__ import annotations

from typing import Any, Protocol


class AccountQueries(Protocol):
    """Accounts, their tokens and trading state, and stored idempotent replies."""

    # ---- accounts -------------------------------------------------------------------------

    def has_accounts(self) -> bool: ...

    def account_by_name(self, name: str) -> dict[str, Any] | None:
        """{id, name}, or None."""
        ...

    def account_id_of(self, name: str) -> int:
        """The id of an account that exists."""
        ...

    def list_accounts(self) -> list[dict[str, Any]]:
        """Every account's {id, name}, by id."""
        ...

    def create_account(self, name: str, actor: dict[str, Any]) -> int:
        """A new account, running, with its `account_created` event; its id."""
        ...

    # ---- tokens ---------------------------------------------------------------------------

    def insert_token(
        self, token_id: str, account_id: int, role: str, label: str, token_hash: str
    ) -> None: ...

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        """The token with this hash and its account's name, revoked or not; or None."""
        ...

    def token_active(self, token_id: str) -> bool:
        """False once the token is revoked (or gone): a session opened with it must stop."""
        ...

    def touch_token(self, token_id: str) -> None:
        """Record that the token was used now."""
        ...

    def revoke_token(self, token_id: str) -> dict[str, Any] | None:
        """Revoke the token (if not yet); the row as it was before, or None if unknown."""
        ...

    def list_tokens(self, account_id: int | None = None) -> list[dict[str, Any]]:
        """Tokens (never their hashes) of one account or all, oldest first."""
        ...

    # ---- trading state --------------------------------------------------------------------

    def get_state(self, account_id: int) -> dict[str, Any]:
        """{account, mode, stealth, reason, since, halt_gen}."""
        ...

    def set_mode(self, account_id: int, mode: str, reason: str | None) -> None: ...

    def raise_halt_gen(self, account_id: int, at_least: int) -> None:
        """Never let the halt generation go down (a restore from an older backup)."""
        ...

    def next_halt_gen(self, account_id: int) -> int:
        """Start the account's next halt generation (an emergency stop); return it."""
        ...

    def set_stealth(self, account_id: int, enabled: bool) -> None: ...

    # ---- idempotency ----------------------------------------------------------------------

    def idempotent_reply(self, account_id: int, key: str) -> dict[str, Any] | None:
        """The stored {fingerprint, status, body} of a key, or None."""
        ...

    def save_idempotent_reply(
        self, account_id: int, key: str, fingerprint: str, status: int, body: bytes
    ) -> None: ...
