"""Where the problem is: grid geometry, locating a point in the grid, the supervisors' map.

- `rules`   pure: reading a GeoJSON file of grid polygons and refusing it whole (unknown code,
            invalid geometry, a child outside its parent, siblings overlapping);
- `locator` pure: the deepest grid containing a point, from an STRtree built once;
- `service` the database side: import (one transaction), the process's locator, routing;
- `svgmap`  pure: a map of grid boundaries, ticket points and hot spots as inline SVG;
- `mapdata` the figures a map shows (overdue, on-time rate, late tickets, recurrences).
"""
