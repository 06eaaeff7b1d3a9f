"""Benchmarks for cppcorn; a package only so that apps import as bench.apps.<name>:app."""
