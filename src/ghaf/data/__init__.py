"""Data: ingestion, contracts, immutable versioned datasets and transforms."""

from ghaf.data.base import DatasetVersion
from ghaf.data.store import (
    dataset_parquet_path,
    get_dataset,
    list_versions,
    read_dataset,
    write_dataset,
)

__all__ = [
    "DatasetVersion",
    "dataset_parquet_path",
    "get_dataset",
    "list_versions",
    "read_dataset",
    "write_dataset",
]
