"""granian entry point for the write-gate prototype: `granian ... asgi_writegate:app`."""

from writegate import install

install()

from waymark.asgi import app  # noqa: F401
