"""Example aeth specialist (``cooking``): a template to copy for your own specialist."""

__version__ = "0.1.0"
