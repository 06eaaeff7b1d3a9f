"""The compiled HTTP/1.1 core: llhttp parsing, response serialisation, and the asyncio protocol."""
