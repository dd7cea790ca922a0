"""W4 anchors in their own venvs: KServe's Python model server and BentoML (adaptive batching).

Each anchor app is a small script run by the anchor venv's interpreter; both load the
same skops file and answer ``{"instances": [[...]]}`` with ``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = {"kserve": "kserve 0.21.0", "bentoml": "bentoml 1.4.40 (adaptive batching)"}

KSERVE_APP = """
import sys
import numpy as np
import skops.io as sio
import uvicorn

_config_init = uvicorn.Config.__init__


def _loopback_only(self, *args, **kwargs):  # KServe hard-codes host 0.0.0.0
    kwargs["host"] = "127.0.0.1"
    _config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_only
import kserve

model_dir, port = sys.argv[1], int(sys.argv[2])
path = model_dir + "/model.skops"
estimator = sio.load(path, trusted=sio.get_untrusted_types(file=path))


class W4(kserve.Model):
    def __init__(self):
        super().__init__("w4")
        self.ready = True

    def predict(self, payload, headers=None):
        rows = np.asarray(payload["instances"], dtype=np.float32)
        return {"predictions": estimator.predict_proba(rows).tolist()}


kserve.ModelServer(http_port=port, grpc_port=port + 1, enable_grpc=False, workers=1).start([W4()])
"""

BENTOML_SERVICE = """
import os
import numpy as np
import skops.io as sio
import bentoml

PATH = os.environ["W4_MODEL_DIR"] + "/model.skops"


@bentoml.service(workers=1)
class W4:
    def __init__(self) -> None:
        self.model = sio.load(PATH, trusted=sio.get_untrusted_types(file=PATH))

    @bentoml.api(batchable=True, max_batch_size=4096, max_latency_ms=100)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(instances.astype(np.float32))
"""


def command(name: str, python: Path, model_dir: Path, port: int, workdir: Path) -> list[str]:
    """How to start anchor ``name`` on ``port`` (its URL path is :data:`PATHS`)."""
    if name == "kserve":
        script = workdir / "kserve_w4.py"
        script.write_text(KSERVE_APP)
        return [str(python), str(script), str(model_dir), str(port)]
    service = workdir / "bento_w4.py"
    service.write_text(BENTOML_SERVICE)
    bentoml = python.parent / "bentoml"
    return [str(bentoml), "serve", "bento_w4:W4", "--port", str(port), "--host", "127.0.0.1"]


PATHS = {"kserve": "/v1/models/w4:predict", "bentoml": "/predict"}
