"""After Redis lost its data (a restart without persistence): rebuild what no caller will bring back.

Callers on hold bring their own place back: their webhook URLs carry their arrival time and priority,
and the next hold round rejoins them in the original order (`CallQueue.hold_round`). Two things have
nobody to bring them back, so they are rebuilt from the database: callers who asked to be called back
keeping their place (they hung up), and the agents who were logged in. Whoever first notices that the
epoch marker is missing (`CallQueue.claim_epoch`) does the rebuild, once per Redis lifetime.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ivr.clock import epoch_ms
from ivr.services import Services
from ivr.tickets import reads as tickets

log = logging.getLogger(__name__)

CALLBACK_KEEP = timedelta(hours=24)
"""How long a place kept for a callback is kept (as `CallQueue.request_callback` keeps it)."""
LOGIN_KEEP = timedelta(hours=24)
"""How long a login lasts without being renewed (as the agent keys' TTL)."""


def rebuild_if_lost(s: Services) -> bool:
    """Rebuild kept callbacks and agent logins if this Redis is new or emptied; True if it did."""
    if not s.queue.claim_epoch():
        return False
    try:
        rebuild(s)
    except Exception:
        s.queue.release_epoch()  # let the next round (here or elsewhere) try again
        raise
    return True


def rebuild(s: Services) -> None:
    """Put kept callbacks back in their lines and log the agents back in, from the database."""
    now = s.clock.now()
    rules = s.rules.get().rules
    with s.db.sessions() as session:
        callbacks = tickets.pending_callbacks(session, since=now - CALLBACK_KEEP)
    with s.db.sessions() as session:
        agents = tickets.logged_in_agents(session, since=now - LOGIN_KEEP)
    restored = 0
    for callback in callbacks:
        if callback.queue not in rules.queues or callback.queued_at is None:
            continue
        keep_until = callback.asked_at + CALLBACK_KEEP
        if s.queue.restore_callback(
            callback.call_sid,
            callback.queue,
            callback.language,
            callback.priority,
            epoch_ms(callback.queued_at),
            callback.number,
            our_number=callback.our_number,
            reference=callback.reference,
            keep_until_ms=epoch_ms(keep_until),
            code=callback.callback_code,
        ):
            restored += 1
    logged_in = 0
    for agent_id in agents:
        agent = rules.agents.get(agent_id)
        if agent is not None:
            s.queue.agent_available(agent_id, list(rules.lines_of(agent)))
            logged_in += 1
    if restored or logged_in:
        log.warning(
            "Redis had lost its data: restored %d kept callbacks and %d agent logins",
            restored,
            logged_in,
        )
        s.switchboard.dispatch()
