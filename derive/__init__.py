"""derive: symbolic derivations of transformer arithmetic (see README.md and derive.api)."""

import os
import sys

__version__ = "0.1.0"

# SymPy's caches hold 1,000 entries by default; a site build or a report cycles through tens of thousands of
# expressions, so the default evicts what the next preset needs (about 8% of the site build). Set only when
# SymPy is not loaded yet, and never over the user's own SYMPY_CACHE_SIZE.
if "sympy" not in sys.modules:
    os.environ.setdefault("SYMPY_CACHE_SIZE", "50000")
