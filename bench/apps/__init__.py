"""ASGI apps served by every server in bench/load.py and bench/ws.py."""
