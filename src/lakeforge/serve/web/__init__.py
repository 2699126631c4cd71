"""``lakeforge serve web``: dashboards as code and the operations view."""
