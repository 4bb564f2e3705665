"""Agreement and safety scores in the app: label resolution, dashboards, reports and their API."""
