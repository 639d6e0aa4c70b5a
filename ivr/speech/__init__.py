"""Speech at the menus that listen (`Menu.listen`): what a caller said, routed to an option.

`words` turns text into the words compared (stems, pinyin); `router` decides where they lead.
Pure: no Flask, Redis or SQL; the call flow asks `Bundle.router` and follows the `Route`.
"""

from ivr.speech.router import NOWHERE, Route, Router, Utterance

__all__ = ["NOWHERE", "Route", "Router", "Utterance"]
