"""The HTML pages: reporters, grid leaders, supervisors, administrators, one router per area
(`public`, `inbox`, `ticket`, `supervise`, `reports`, `admin`), included by `closeloop.web.app`;
`base` is what they share (language, rendering, guards, the error page).

Thin: each page asks the same functions as the JSON API (often the API's handlers themselves)
and renders a Jinja2 template. Who may see and do what is decided there and in
`closeloop.web.access`; the pages only leave out what a person may not do, the server refuses
it anyway. Every form carries the CSRF token (`closeloop.web.auth`). User text comes from
`closeloop.web.i18n` (Chinese by default; `?lang=en` switches and a cookie keeps the choice).
Time comes from the app's clock, so a test can move it.
"""
