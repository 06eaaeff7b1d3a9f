"""Build script for cppcorn's compiled core.

The metadata lives in pyproject.toml; this file only declares the extension
modules: the Cython HTTP/1.1 core, compiled together with the vendored llhttp
C sources and the small C helpers in csrc/.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

LLHTTP_DIR = os.path.join("vendor", "llhttp")
LLHTTP_SOURCES = [os.path.join(LLHTTP_DIR, "src", name) for name in ("api.c", "http.c", "llhttp.c")]
INCLUDE_DIRS = [os.path.join(LLHTTP_DIR, "include"), "csrc"]

if sys.platform == "win32":
    EXTRA_COMPILE_ARGS = ["/O2"]
else:
    EXTRA_COMPILE_ARGS = ["-O2", "-fno-strict-aliasing"]


def extension(name, *extra_sources):
    source = name.replace(".", os.sep) + ".pyx"
    return Extension(
        name,
        [source, *extra_sources],
        include_dirs=INCLUDE_DIRS,
        extra_compile_args=EXTRA_COMPILE_ARGS,
    )


extensions = [
    extension("cppcorn.http.parser", *LLHTTP_SOURCES),
    extension("cppcorn.http.connection"),
    extension("cppcorn.http.response"),
    extension("cppcorn.http.awaitables"),
    extension("cppcorn.http.cycle"),
    extension("cppcorn.http.runner"),
    extension("cppcorn.http.websocket"),
    extension("cppcorn.http.protocol"),
]
if sys.platform != "win32":
    # cppcorn.loop's readiness core (epoll, poll); Windows gets IOCP later
    # and until then runs on asyncio's own loops.
    extensions += [
        extension("cppcorn.loop.core"),
        extension("cppcorn.loop.stream"),
        extension("cppcorn.loop.sockets"),
    ]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
