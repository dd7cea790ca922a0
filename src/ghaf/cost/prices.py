"""The price sheet and OpenCost's allocation rule: each resource is charged
max(request, usage) x price; what was held but not used is idle."""

from __future__ import annotations

from dataclasses import dataclass, field

from ghaf.cost.base import Usage
from ghaf.settings import CostSettings


@dataclass(frozen=True)
class Quantities:
    """Resource-hours of one record: used, held (requested) and billed (the larger)."""

    cpu_used: float
    cpu_held: float
    memory_used: float
    memory_held: float
    gpu_used: float
    gpu_held: float

    @classmethod
    def of(cls, usage: Usage) -> Quantities:
        hours = usage.hours
        return cls(
            cpu_used=usage.cpu_s / 3600.0,
            cpu_held=usage.cpu_request * hours,
            memory_used=usage.memory_gb_hours,
            memory_held=usage.memory_request_gb * hours,
            gpu_used=usage.gpu_s / 3600.0,
            gpu_held=usage.gpu_request * hours,
        )

    @property
    def cpu_billed(self) -> float:
        return max(self.cpu_used, self.cpu_held)

    @property
    def memory_billed(self) -> float:
        return max(self.memory_used, self.memory_held)

    @property
    def gpu_billed(self) -> float:
        return max(self.gpu_used, self.gpu_held)


@dataclass(frozen=True)
class PriceSheet:
    """Prices per vCPU-hour, GB-hour and GPU-hour (by machine class)."""

    currency: str = "USD"
    cpu_hour: float = 0.031611
    memory_gb_hour: float = 0.004237
    gpu_hour: float = 0.95
    gpu_classes: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: CostSettings) -> PriceSheet:
        return cls(
            settings.currency,
            settings.cpu_hour,
            settings.memory_gb_hour,
            settings.gpu_hour,
            dict(settings.gpu_classes),
        )

    def gpu_price(self, gpu_class: str | None) -> float:
        if gpu_class is None:
            return self.gpu_hour
        return self.gpu_classes.get(gpu_class, self.gpu_hour)

    def charge(self, usage: Usage) -> Charge:
        """What ``usage`` costs: billed (max of request and usage) and used, per resource."""
        q = Quantities.of(usage)
        gpu = self.gpu_price(usage.gpu_class)
        return Charge(
            cpu=q.cpu_billed * self.cpu_hour,
            memory=q.memory_billed * self.memory_gb_hour,
            gpu=q.gpu_billed * gpu,
            used=q.cpu_used * self.cpu_hour + q.memory_used * self.memory_gb_hour
            + q.gpu_used * gpu,
        )  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "cpu_hour": self.cpu_hour,
            "memory_gb_hour": self.memory_gb_hour,
            "gpu_hour": self.gpu_hour,
            "gpu_classes": dict(sorted(self.gpu_classes.items())),
        }


@dataclass(frozen=True)
class Charge:
    """The cost of one record by resource; ``used`` is what its actual usage costs, and
    the rest of the total is idle (held but not used)."""

    cpu: float
    memory: float
    gpu: float
    used: float

    @property
    def total(self) -> float:
        return self.cpu + self.memory + self.gpu

    @property
    def idle(self) -> float:
        return max(self.total - self.used, 0.0)
