"""ASGI apps served by every server in the load benchmark (bench/load.py)."""
