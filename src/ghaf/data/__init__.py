"""Data: ingestion, contracts, immutable versioned datasets and transforms."""

from ghaf.data.base import DatasetVersion
from ghaf.data.contracts import Contract, load_contract
from ghaf.data.ingest import ContractViolationError, ingest, validate
from ghaf.data.store import (
    dataset_parquet_path,
    get_dataset,
    list_versions,
    read_dataset,
    write_dataset,
)
from ghaf.data.transforms import run_transform

__all__ = [
    "Contract",
    "ContractViolationError",
    "DatasetVersion",
    "dataset_parquet_path",
    "get_dataset",
    "ingest",
    "list_versions",
    "load_contract",
    "read_dataset",
    "run_transform",
    "validate",
    "write_dataset",
]
