"""Row shapes that leave the store: events (with their one-time wire encoding) and dict rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# One encoder made once (json.dumps with arguments builds a new one per call, ~0.7 us), strict:
# a NaN that got past validation fails its transaction instead of being stored and served.
from signalosd.strict_json import dumps as dumps


@dataclass(slots=True)
class EventRecord:
    """One committed event. `data` and `actor` stay JSON text as stored, so the wire message is
    built by concatenation once and shared by every subscriber (no per-client encoding)."""

    seq: int
    account_id: int | None
    account: str | None
    type: str
    data_json: str
    ts: str
    actor_json: str
    _message: str | None = field(default=None, repr=False)

    def message(self) -> str:
        """The seed's WebSocket envelope with the seq added."""
        if self._message is None:
            self._message = (
                f'{{"id":"evt_{self.seq}","type":{dumps(self.type)},"seq":{self.seq},'
                f'"data":{self.data_json},"timestamp":"{self.ts}",'
                f'"account":{dumps(self.account)},"actor":{self.actor_json}}}'
            )
        return self._message

    def wire_json(self) -> str:
        """`to_wire()` as JSON text, by concatenation: `data` and `actor` are stored as strict
        JSON already, so a page of events is served without parsing and re-encoding them."""
        return (
            f'{{"seq":{self.seq},"account":{dumps(self.account)},"type":{dumps(self.type)},'
            f'"data":{self.data_json},"ts":{dumps(self.ts)},"actor":{self.actor_json}}}'
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "account": self.account,
            "type": self.type,
            "data": json.loads(self.data_json),
            "ts": self.ts,
            "actor": json.loads(self.actor_json),
        }
