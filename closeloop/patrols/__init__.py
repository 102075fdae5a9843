"""Patrols (巡查到村到网格): a leader's round of grids, a check-in at each, problems found.

`rules` is pure (checks, coverage arithmetic), `service` holds the use cases (one transaction
each; problems found become tickets through `closeloop.service.submit`), `web` the phone page.
"""
