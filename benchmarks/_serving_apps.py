"""Child-process apps for the serving benchmark: the bare Starlette baseline and Ghaf.

``python -m benchmarks._serving_apps bare MODEL_DIR PORT`` or ``ghaf MODEL_DIR PORT``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def bare(model_dir: str, port: int) -> None:
    """The anchor: Starlette + uvicorn calling predict_proba on each request."""
    import numpy as np
    import skops.io as sio
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    path = Path(model_dir) / "model.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        rows = np.asarray(body["instances"], dtype=np.float32)
        return JSONResponse({"predictions": model.predict_proba(rows).tolist()})

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


TOKEN_FILE = "bench-token"


def home_of(model_dir: Path) -> Path:
    """The bench home beside a model directory: its key signs, its trust store verifies."""
    return model_dir.parent / "home"


def seal(model_dir: Path) -> None:
    """What registration does: sign ``model_dir`` with the bench home's key (Ghaf serves
    only models a trusted key signed)."""
    from ghaf.home import init_home
    from ghaf.security.signing import sign_model_dir
    from ghaf.settings import load_settings
    from ghaf.testing.people import mint

    with init_home(load_settings(home=home_of(model_dir))) as platform:
        sign_model_dir(platform.settings, model_dir)
        token = home_of(model_dir) / TOKEN_FILE
        if not token.exists():  # the server answers only credentials allowed model.predict
            secret = mint(platform, "svc-bench", ["model_server"], kind="service")
            token.touch(mode=0o600)
            token.write_text(secret)


def bench_headers(model_dir: Path) -> dict[str, str]:
    """The Authorization header of the bench's scoring token (see :func:`seal`)."""
    return {"Authorization": f"Bearer {(home_of(model_dir) / TOKEN_FILE).read_text()}"}


def ghaf(
    model_dir: str, port: int, flavor: str = "skops", log_dir: str = "", workers: str = "1"
) -> None:
    from ghaf.platform import Platform
    from ghaf.serving.server import ServeConfig, serve_forever
    from ghaf.settings import load_settings

    home = home_of(Path(model_dir))
    config = ServeConfig(
        models=[{"name": "w4", "version": "1", "flavor": flavor, "path": model_dir}],
        port=port,
        log_dir=log_dir or None,
        workers=int(workers),
        home=str(home),
    )
    serve_forever(config, Platform(load_settings(home=home)))


if __name__ == "__main__":
    kind, directory, port_text, *rest = sys.argv[1:]
    if kind == "bare":
        bare(directory, int(port_text))
    else:
        ghaf(directory, int(port_text), *rest)
