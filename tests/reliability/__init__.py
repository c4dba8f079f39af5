"""Reliability and security: load, faults and hostile input against the real gunicorn server."""
