"""SQL for search, plate history and recent reads."""
