"""Worker process entry (``python -m ghaf.serving.worker INDEX``): reads its config on stdin.

A module of its own so that ``-m`` does not re-run ``ghaf.serving.server``, which the
package has already imported.
"""

from __future__ import annotations

import sys

from ghaf.serving.server import worker_main

if __name__ == "__main__":
    worker_main(sys.argv[1] if len(sys.argv) > 1 else "0")
