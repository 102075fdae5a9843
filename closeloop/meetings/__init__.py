"""Meetings (定期例会): the example meeting, on-site meetings (现场会), the deployment meeting
(部署会) and learning visits (取经). Their agenda comes from the weekly report of a week and the
previous meeting's decisions still open; a decision is a ticket (交办) filed through
`closeloop.service.submit` on a grid, linked to the meeting, with the ladder of any ticket.

`rules` is pure (kinds, checks, the agenda from report data, minutes text), `service` holds the
use cases (one transaction each), `web` the pages.
"""
