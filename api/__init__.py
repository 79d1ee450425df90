"""HTTP API for clients and admins."""
