"""telerounds: virtual ward rounds and remote consults between sister hospitals."""

__version__ = "0.1.0"
