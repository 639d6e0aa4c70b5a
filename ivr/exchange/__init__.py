"""The exchange hook: the line asks the exchange's back office who is calling and acts for them.

The exchange implements a small HTTP API (`docs/exchange-hook.yaml`, OpenAPI 3.1): look a caller up
by number, send and check a one-time code, lock an account. `contract` holds its messages and its
signature, `client` is how the line calls it (deadlines, a circuit breaker, answers validated), and
`reference` is an implementation of it that the tests, the simulator and `ivr serve --dev` use, and
that an exchange replaces with its own.
"""
