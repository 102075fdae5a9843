"""The web service: the JSON API, Open311 and (added by closeloop.web.pages) the HTML pages.

`closeloop.web.app.create_app(app)` builds the FastAPI application; `closeloop serve` runs it.
"""
