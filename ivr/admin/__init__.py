"""The admin dashboard's accounts: `accounts` the password file, `cli` the `ivr admins` command.

The dashboard itself, its pages and its login, is a view: `ivr.web.admin`.
"""
