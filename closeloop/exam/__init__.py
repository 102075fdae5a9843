"""The monthly exam as the zone runs it (月考, 奖优罚劣): the method's instruments, not reports.

Pure rules: `sheets` (the three answer sheets as data), `scoring` (inspectors' lines and the
exam total), `plan` (the month's cross-inspection plan), `boards` (the board score, ranks, red
and yellow boards), `rewards` (tiers, the city's score, the three-month deduction),
`accountability` (who is told of a 问责 case, and what) and `funds` (the fund ledger). `service`
holds the use cases, one transaction each; `render` and `printing` turn them into HTML,
Markdown, XLSX and JSON. The command line (`closeloop.cli.exam`) and the pages
(`closeloop.web.pages.exam`) are thin.

The exam reads the month's ticket figures from `closeloop.reports.indicators` and borrows the
report's spreadsheet and style helpers; nothing in `closeloop.reports` imports the exam.
"""
