"""The audit hash chain: each event's hash covers its content and the hash of the event before it.

Pure (no Django import) so that the migration that backfills the chain and ``audit_verify`` use the
very same digest as the writer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def event_digest(prev_hash: str, event: Mapping[str, Any]) -> str:
    """sha256 over the previous hash and the event's canonical JSON (sorted keys, UTC time)."""
    created_at = event["created_at"]
    if isinstance(created_at, datetime):
        created_at = created_at.astimezone(UTC).isoformat()
    body = {
        "actor_id": event.get("actor_id"),
        "action": event["action"],
        "target_type": event.get("target_type") or "",
        "target_id": event.get("target_id") or "",
        "details": event.get("details") or {},
        "created_at": created_at,
        "ip_address": event.get("ip_address") or "",
        "user_agent": event.get("user_agent") or "",
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    event_id: int
    kind: str  # "altered": content does not match its hash; "gap": the link to the previous is broken
    message: str


def verify(events: Iterable[Mapping[str, Any]]) -> Iterator[ChainProblem]:
    """Walk sealed events in chain order (``seq``); yield every altered event and every broken link
    (a deleted event: a missing position, and a link to a hash that is not the previous event's)."""
    previous = GENESIS
    expected = 1
    for event in events:
        seq = event.get("seq", expected)
        if event["prev_hash"] != previous or seq != expected:
            yield ChainProblem(
                event["id"],
                "gap",
                f"event {event['id']} follows a hash that is not the previous event's: "
                "an event before it was deleted or altered",
            )
        if event_digest(event["prev_hash"], event) != event["hash"]:
            yield ChainProblem(event["id"], "altered", f"event {event['id']} does not match its hash")
        previous = event["hash"]
        expected = (seq or expected) + 1
