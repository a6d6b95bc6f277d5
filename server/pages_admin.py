"""Supervisor and admin pages: hot lists, cameras, users, audit log."""

ADMIN_HANDLERS: list = []
