"""The web wing: every Flask blueprint, each a thin view (authenticate, parse, call, render).

`voice` answers Twilio's voice webhooks, `agents` the agent line and its HTTP API, `fallback` the
number's Fallback URL, `health` `/healthz` and `/livez`, `metrics` `/metrics`, `admin` the dashboard.
`inbound` reads and checks Twilio's request once for all of them. No view imports another view
(`tests/web/test_layers.py`): what two views share lives in a module that is not a view.
"""
