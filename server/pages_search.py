"""Search (justified and audited), plate history and recent reads per camera."""

SEARCH_HANDLERS: list = []
