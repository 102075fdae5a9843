"""The web service: the JSON API, Open311 and the HTML pages (`web/pages/`, a router per area).

`closeloop.web.app.create_app(app)` builds the FastAPI application; `closeloop serve` runs it.
"""
