"""RFC 6962 Merkle tree hashes, built incrementally from a compact frontier of subtree roots."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass
class MerkleFrontier:
    """Roots of the perfect subtrees covering leaves ``[0, size)``, largest first.

    Appending is O(log n) amortized; :meth:`root` is the RFC 6962 tree hash of
    every leaf so far. A checkpoint stores the frontier so the next one can
    continue from it instead of re-reading the whole log.
    """

    size: int = 0
    nodes: list[tuple[int, bytes]] = field(default_factory=list)
    """(height, hash) of each perfect subtree, left to right."""

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (``SHA-256(0x00 || data)``)."""
        height, value = 0, leaf
        while self.nodes and self.nodes[-1][0] == height:
            _, left = self.nodes.pop()
            value = node_hash(left, value)
            height += 1
        self.nodes.append((height, value))
        self.size += 1

    def root(self) -> bytes:
        """The RFC 6962 Merkle tree hash of the leaves so far."""
        if not self.nodes:
            return hashlib.sha256(b"").digest()
        value = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            value = node_hash(left, value)
        return value

    def ranges(self) -> list[tuple[int, int]]:
        """The 1-based, inclusive leaf ranges each frontier node covers."""
        spans, start = [], 1
        for height, _ in self.nodes:
            spans.append((start, start + (1 << height) - 1))
            start += 1 << height
        return spans

    def to_json(self) -> list[list[int | str]]:
        return [[height, value.hex()] for height, value in self.nodes]

    @classmethod
    def from_json(cls, size: int, nodes: list[list[int | str]]) -> MerkleFrontier:
        return cls(size, [(int(h), bytes.fromhex(str(v))) for h, v in nodes])


def merkle_root(leaves: list[bytes]) -> bytes:
    """The RFC 6962 tree hash, computed by the recursive definition (a test oracle)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:split]), merkle_root(leaves[split:]))
