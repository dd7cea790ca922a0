"""Child process of the W6 peak-RSS figure: score a Parquet file, print rows and seconds.

``python -m benchmarks._serving_w6 MODEL_DIR SOURCE OUTPUT``; the parent reads this
process's peak RSS from ``wait4``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(model_dir: str, source: str, output: str) -> None:
    from ghaf.serving.batch import score_file
    from ghaf.serving.runtimes import load_runtime

    runtime = load_runtime("skops", Path(model_dir))
    started = time.perf_counter()
    stats = score_file(runtime, Path(source), Path(output), progress=False)
    print(json.dumps({"rows": stats.rows, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
