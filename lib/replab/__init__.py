"""replab: the shared library behind the reproducible book of five papers on neural representations."""
__version__ = "0.1.0"

from . import runtime  # noqa: E402,F401
