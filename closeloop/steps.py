"""The step table: every step the engine runs, by name, and the hooks after every step.

`bootstrap()` gives this table to the App; `service.run_step` looks steps up in `app.steps`.
A step of the workflow (workflows/*.toml) that is not named here cannot be run. `submit` is not
a step effect: `service.submit` creates the ticket.
"""

from __future__ import annotations

from closeloop import extensions, loop
from closeloop.app import StepTable

TABLE = StepTable(
    effects={
        # the loop (closeloop/loop.py)
        "fix": loop.fix,
        "reject": loop.reject,
        "verify": loop.verify,
        "close": loop.close,
        "reopen": loop.reopen,
        "dismiss": loop.dismiss,
        "reassign": loop.reassign,
        "mark_urgent": loop.mark_urgent,
        # deadlines: extension (延期) and deferral (缓办/挂账) (closeloop/extensions.py)
        "request_extension": extensions.request_extension,
        "approve_extension": extensions.approve_extension,
        "refuse_extension": extensions.refuse_extension,
        "defer": extensions.defer,
        "resume": extensions.resume,
    },
    # A step that ended a stage instance closes its escalation ladder, lapses its open
    # extension request and cancels its reminders still waiting in the outbox.
    after_step=(extensions.stage_left,),
)
