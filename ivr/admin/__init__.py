"""The admin dashboard under /admin: live queues, today's figures, tickets, rules; behind a login.

`views.bp` is the blueprint; `auth` the session, CSRF and login throttle; `accounts` the password
file; `figures` and `chart` what the pages show; `cli` the `ivr admins` command.
"""
