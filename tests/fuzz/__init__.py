"""A fuzzer of our own (issue 17): generated HTTP/1.1 and WebSocket streams
against the protocol in process (inprocess.py), a differential check of
request framing against h11 (differential.py), and hostile connections
against a real server process (sockets.py). `python -m tests.fuzz` runs it
for longer; tests/test_fuzz.py is the bounded CI run."""
