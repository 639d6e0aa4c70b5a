"""Call tickets: one per call, written from the journal, read by the line, the admin and `ivr tickets`.

A webhook never writes a ticket. It appends what it learned to the journal and answers; a writer
folds the journal into the database later. The modules, in the order a record travels:

What a ticket is made of (pure: no database, no Redis; the call flow imports them):
- `changes`: what the call flow records on a ticket (`TicketChange`, `Outcome`, `QueueEvent`).
- `records`: a journal record, one webhook's facts about one call, as a line of JSON.
- `projection`: a call's ticket folded from its records; the same records give the same ticket.
- `references`: the ticket numbers callers note down, handed out even while the database is down.

The pipeline, webhook to database (writes):
- `journal`: where webhooks append records (a Redis stream, or a local spool while Redis is down).
- `writer`: the process that takes records from the journal to the database in batches.
- `writes`: applying a batch of records to tickets and queue events; leasing reference blocks.
- `retention`: pruning the records of calls that ended long ago.
- `replay`: `ivr journal replay`, records a full journal logged (JOURNAL-LOST) put back into it.

Reading (nothing here changes a ticket):
- `reads`: what call handling asks: a ticket, a call's records, callbacks waiting, agents logged in.
- `events`: a call's queue events and per-queue statistics (the dashboard's figures, wait estimates).
- `listing`: finding tickets, a ticket's story and CSV/JSON exports, for the admin and `ivr tickets`.

Shared: `models` (the tables) and `unit_of_work` (the transaction every database function runs in:
committed on return, rolled back on error). `cli` is `ivr tickets` (list, show, export, prune).
"""
