"""``type: http``: records of a paginated JSON API."""
