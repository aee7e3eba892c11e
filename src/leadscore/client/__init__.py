"""Clients of a running leadscore service, over its HTTP API (``leadscore send``)."""
