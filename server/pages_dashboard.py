"""The chief's dashboard: charts (server-rendered SVG) with their numbers."""

DASHBOARD_HANDLERS: list = []
