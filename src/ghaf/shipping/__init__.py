"""Audit shipping: the audit trail (operations and access events) delivered to the
enterprise's log system, syslog over TLS or HTTP JSON, from a durable cursor per sink."""

from ghaf.shipping.base import LogSink, ShippedRecord
from ghaf.shipping.shipper import ShipResult, SinkPass, SinkStatus, ship_once, sink_status

__all__ = [
    "LogSink",
    "ShipResult",
    "ShippedRecord",
    "SinkPass",
    "SinkStatus",
    "ship_once",
    "sink_status",
]
