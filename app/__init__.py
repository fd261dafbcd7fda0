"""The fluorosim desktop program and command line: the only package that imports Qt."""

__version__ = "0.1.0"
