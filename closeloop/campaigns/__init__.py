"""The two carriers of the zone's method.

- 一月一村大会战 (`service`): a campaign day on one or more villages, with one or more of the four
  assault actions, teams of people, the month's focus and weekly themes; the day's findings are
  filed in bulk (tagged to the campaign); progress is found, fixed and open per village and
  per action.
- 一村一月大整治 (`rectification`): every village, every month, a rectification record with its
  focus and items (its open tickets, its recurrence hot spots, items it adds), ticked off to
  zero (地毯式销号).

`rules` is pure; `service` and `rectification` hold the use cases (one transaction each) and
reach the loop through `closeloop.service`; the reports only read from here.
"""
