"""Reports: the weekly example-meeting report, the monthly exam with its red and yellow boards,
and the inline SVG charts they print."""
