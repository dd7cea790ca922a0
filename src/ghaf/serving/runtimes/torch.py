"""PyTorch models saved with ``torch.export``: CUDA (bf16, CUDA graphs, pinned copies) or CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import MissingDependencyError
from ghaf.serving.base import Array, Signature, TensorSpec, as_matrix
from ghaf.serving.runtimes import find_model_file
from ghaf.serving.runtimes._tabular import column_of, warm

GRAPH_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
"""Small batch sizes captured as CUDA graphs (launch-bound sizes); larger ones run eagerly."""


class TorchRuntime:
    """An exported module; on CUDA it runs in bf16 from pinned buffers, small batches as graphs.

    A batch is padded up to the next captured size, replayed, and the padding cut off.
    """

    flavor = "pytorch"

    def __init__(
        self,
        module: Any,
        signature: Signature | None,
        *,
        device: str = "auto",
        bf16: bool = True,
        cuda_graphs: bool = True,
    ) -> None:
        import torch

        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.bfloat16 if (self.cuda and bf16) else torch.float32
        self.module = module.to(self.device).to(self.dtype)
        if signature is None or not signature.inputs:
            n_features = _in_features(module)
            outs = (TensorSpec("predictions", "FP64", (-1, -1)),)
            signature = Signature.tabular([f"f{i}" for i in range(n_features)], outputs=outs)
        elif not signature.outputs:
            outs = (TensorSpec("predictions", "FP64", (-1, -1)),)
            signature = Signature(signature.inputs, outs, signature.columns)
        self.signature = signature
        self._output = signature.outputs[0].name
        self._graphs: dict[int, tuple[Any, Any, Any]] = {}
        self._use_graphs = self.cuda and cuda_graphs

    @classmethod
    def load(
        cls,
        model_dir: Path,
        signature: Signature | None = None,
        *,
        allowed_files: list[str] | None = None,
        device: str = "auto",
        threads: int = 1,
        **_options: Any,
    ) -> TorchRuntime:
        try:
            import torch
        except ImportError as exc:
            raise MissingDependencyError("torch", "torch") from exc
        torch.set_num_threads(threads)
        path = find_model_file(model_dir, (".pt2",), allowed_files)
        module = torch.export.load(str(path)).module()
        return cls(module, signature, device=device)

    def predict(self, batch: Array) -> dict[str, Array]:
        torch = self.torch
        rows = as_matrix(batch, self.signature.n_features, "float32")
        if not rows.flags.writeable:  # a binary request's buffer; torch wants writable memory
            rows = rows.copy()
        with torch.inference_mode():
            if not self.cuda:
                out = self.module(torch.from_numpy(rows))
                return {self._output: column_of(out.double().numpy())}
            size = next((s for s in GRAPH_BATCH_SIZES if s >= len(rows)), 0)
            if self._use_graphs and size:
                out = self._replay(rows, size)
            else:
                host = torch.from_numpy(rows).pin_memory()
                out = self.module(host.to(self.device, non_blocking=True).to(self.dtype))
            result = out[: len(rows)].float().cpu().numpy().astype(np.float64)
        return {self._output: column_of(result)}

    def _replay(self, rows: Array, size: int) -> Any:
        torch = self.torch
        if size not in self._graphs:
            self._graphs[size] = self._capture(size)
        graph, static_in, static_out = self._graphs[size]
        padded = np.zeros((size, rows.shape[1]), dtype=np.float32)
        padded[: len(rows)] = rows
        static_in.copy_(torch.from_numpy(padded).pin_memory().to(self.device, non_blocking=True))
        graph.replay()
        return static_out

    def _capture(self, size: int) -> tuple[Any, Any, Any]:
        torch = self.torch
        static_in = torch.zeros((size, self.signature.n_features), device=self.device)
        static_in = static_in.to(self.dtype)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                self.module(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.module(static_in)
        return graph, static_in, static_out

    def warmup(self) -> None:
        warm(self)
        if self._use_graphs:
            for size in GRAPH_BATCH_SIZES:
                self.predict(np.zeros((size, self.signature.n_features), dtype=np.float32))


def _in_features(module: Any) -> int:
    for parameter in module.parameters():
        if parameter.ndim == 2:
            return int(parameter.shape[1])
    return 0


def save_torch(module: Any, n_features: int, dest: Path) -> Path:
    """Export ``module`` (inputs rows x ``n_features``, any row count) to ``dest`` (.pt2)."""
    import torch

    example = torch.zeros((4, n_features))
    batch = torch.export.Dim("batch", min=1, max=1 << 24)
    program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},))
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(dest))
    return dest
