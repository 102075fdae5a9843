"""closeloop: close the loop on environmental problems in a development zone."""
