"""The admin dashboard under /admin: live queues, today's figures, tickets, rules; behind a login.

`views.bp` is the blueprint; `auth` the session, CSRF and login throttle; `figures`, `chart` and
`releases` what the pages show. The accounts (the password file, `ivr admins`) are `ivr.admin`.
"""
