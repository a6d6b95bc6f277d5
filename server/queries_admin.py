"""SQL for hot-list, camera and user administration, the audit view and the dashboard."""
