"""C2SP chunked encryption (c2sp.org/chunked-encryption, "Cobblestone"), streamed both ways.

HKDF-Expand(SHA-512) derives a per-message AEAD key, base nonce and key commitment
from an input key, a random 24-byte salt and a context; the message is cut into
16 KiB chunks, the last always short (possibly empty), which is what makes
truncation detectable. Chunk ``i`` uses ``base_nonce XOR i``. Ciphertext:
``salt || commitment || chunk_0 || ... || chunk_n``.

Work happens in batches of many chunks into reused buffers (``encrypt_into`` /
``decrypt_into``), so memory stays constant and Python overhead per chunk is small.
"""

from __future__ import annotations

import hmac
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA512
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ghaf.errors import IntegrityError, InvalidInputError

CHUNK = 16384
TAG = 16
SALT_SIZE = 24
COMMITMENT_SIZE = 32
HEADER_SIZE = SALT_SIZE + COMMITMENT_SIZE
NONCE_SIZE = 12
CT_CHUNK = CHUNK + TAG
MAX_CHUNKS = 1 << 38
BATCH_CHUNKS = 128
"""Chunks per batch: 2 MiB of plaintext per read and per write."""
WRITE_DEPTH = 3
"""Ciphertext batches that may wait for a slow ``write`` while encryption goes on."""

_PREFIX = b"c2sp.org/chunked-encryption@v1+"
_AEAD_NAMES = {16: b"AEAD_AES_128_GCM", 32: b"AEAD_AES_256_GCM"}

Write = Callable[[memoryview], Any]
ReadInto = Callable[[memoryview], int | None]


def _derive(
    input_key: bytes, salt: bytes, context: bytes, key_size: int
) -> tuple[AESGCM, int, bytes]:
    if len(input_key) != key_size:
        raise InvalidInputError(
            f"chunked-encryption input key is {len(input_key)} bytes, expected {key_size}",
            hint="use a key of the AEAD's key size (32 bytes for AES-256-GCM)",
        )
    info = _PREFIX + _AEAD_NAMES[key_size] + b"\x00" + salt + context
    okm = HKDFExpand(SHA512(), key_size + NONCE_SIZE + COMMITMENT_SIZE, info).derive(input_key)
    key = okm[:key_size]
    base_nonce = int.from_bytes(okm[key_size : key_size + NONCE_SIZE], "big")
    return AESGCM(key), base_nonce, okm[key_size + NONCE_SIZE :]


def _nonce(base: int, counter: int) -> bytes:
    if counter >= MAX_CHUNKS:
        raise IntegrityError(
            "chunked-encryption message exceeds 2^38 chunks",
            hint="split the artifact; a message may hold at most 4 PiB",
        )
    return (base ^ counter).to_bytes(NONCE_SIZE, "big")


def _fill(readinto: ReadInto, view: memoryview) -> int:
    """Read until ``view`` is full or the source ends; returns the bytes read."""
    filled = 0
    while filled < len(view):
        count = readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


class _BackgroundWriter:
    """Hands buffers to ``write`` on a helper thread (in order), so the caller works on the
    next buffer meanwhile: writing, or hashing beside encryption. Up to ``depth`` buffers
    wait their turn, so a write that stalls for a moment (the kernel throttling dirty
    pages) does not stall the caller, and the writer finds work when it resumes."""

    def __init__(self, write: Write, depth: int = 1) -> None:
        self._write = write
        self._depth = depth
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[Any]] = deque()

    def wait(self, keep: int = 0) -> None:
        """Until at most ``keep`` submitted buffers are still pending (errors raised here)."""
        while len(self._pending) > keep:
            self._pending.popleft().result()

    def submit(self, view: memoryview) -> None:
        """Write ``view`` in the background. Its buffer must stay untouched until ``depth``
        more buffers have been submitted after it (or :meth:`wait`, or :meth:`close`)."""
        self.wait(self._depth - 1)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghaf-crypt")
        self._pending.append(self._pool.submit(self._write, view))

    def close(self, last: memoryview | None = None) -> None:
        """Wait for the pending writes, write ``last`` here, and stop the thread."""
        try:
            self.wait()
            if last is not None:
                self._write(last)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)


def encrypt_stream(
    input_key: bytes,
    context: bytes,
    readinto: ReadInto,
    write: Write,
    *,
    on_plaintext: Callable[[memoryview], Any] | None = None,
    salt: bytes | None = None,
    key_size: int = 32,
) -> int:
    """Encrypt everything ``readinto`` yields, passing ciphertext to ``write``.

    Args:
        input_key: the uniformly random message key (``key_size`` bytes).
        context: application context bound into the key derivation.
        readinto: a ``readinto``-style source of plaintext.
        write: receives the ciphertext in order (views into a reused buffer).
        on_plaintext: sees each plaintext batch, in order (e.g. to hash it), on a helper
            thread while the batch is encrypted, so a hash and the cipher (both release
            the GIL) use two cores; every call has returned when this function does.
        salt: 24 bytes; random unless given (tests inject it to compare with vectors).
        key_size: 32 (Cobblestone-256, the default) or 16 (Cobblestone-128).

    Returns:
        The plaintext length.
    """
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    aead, base, commitment = _derive(input_key, salt, context, key_size)
    write(memoryview(salt + commitment))
    # Two plaintext buffers: one is filled while ``on_plaintext`` still sees the other;
    # WRITE_DEPTH + 1 ciphertext buffers: one is encrypted into while the rest wait to be
    # written (a buffer is reused only once its write has returned).
    pviews = tuple(memoryview(bytearray(BATCH_CHUNKS * CHUNK)) for _ in range(2))
    cviews = tuple(memoryview(bytearray(BATCH_CHUNKS * CT_CHUNK)) for _ in range(WRITE_DEPTH + 1))
    background = _BackgroundWriter(write, WRITE_DEPTH)
    beside = None if on_plaintext is None else _BackgroundWriter(on_plaintext)
    counter = 0
    total = 0
    turn = 0
    last: memoryview | None = None
    try:
        while True:
            pview = pviews[turn % 2]
            cview = cviews[turn % len(cviews)]
            turn += 1
            filled = _fill(readinto, pview)  # on_plaintext is done with this buffer
            total += filled
            if beside is not None and filled:
                beside.submit(pview[:filled])  # waits for the batch before
            full = filled // CHUNK
            out = 0
            for index in range(full):
                start = index * CHUNK
                aead.encrypt_into(
                    _nonce(base, counter),
                    pview[start : start + CHUNK],
                    None,
                    cview[out : out + CT_CHUNK],
                )
                counter += 1
                out += CT_CHUNK
            if filled < len(pview):  # the source ended: the short (maybe empty) final chunk
                rest = pview[full * CHUNK : filled]
                end = out + len(rest) + TAG
                aead.encrypt_into(_nonce(base, counter), rest, None, cview[out:end])
                last = cview[:end]
                return total
            background.submit(cview[:out])
    finally:
        try:
            if beside is not None:
                beside.close()
        finally:
            background.close(last)


def encrypt_bytes(
    input_key: bytes,
    context: bytes,
    plaintext: bytes | bytearray | memoryview,
    *,
    salt: bytes | None = None,
    key_size: int = 32,
) -> bytearray:
    """:func:`encrypt_stream` of a message held in memory, in one output buffer sized to
    it (the same bytes; no 2 MiB batch buffers, which dominate the cost of small files)."""
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    aead, base, commitment = _derive(input_key, salt, context, key_size)
    view = memoryview(plaintext).cast("B")
    full, rest = divmod(len(view), CHUNK)
    out = bytearray(HEADER_SIZE + full * CT_CHUNK + rest + TAG)
    out[:HEADER_SIZE] = salt + commitment
    cview = memoryview(out)
    at = HEADER_SIZE
    for index in range(full):
        chunk = view[index * CHUNK : (index + 1) * CHUNK]
        aead.encrypt_into(_nonce(base, index), chunk, None, cview[at : at + CT_CHUNK])
        at += CT_CHUNK
    aead.encrypt_into(_nonce(base, full), view[full * CHUNK :], None, cview[at:])  # short, last
    return out


class ChunkEncryptor:
    """One message's chunks, each encrypted on its own (chunk ``i`` depends only on the
    key, salt, context and ``i``), so a message sent in parts can send them in any
    order, on several threads, and send one again alone: the bytes come out the same
    as :func:`encrypt_stream`'s under the same salt.

    Attributes:
        header: the message's first bytes (salt and key commitment).
    """

    def __init__(
        self, input_key: bytes, context: bytes, *, salt: bytes | None = None, key_size: int = 32
    ) -> None:
        salt = os.urandom(SALT_SIZE) if salt is None else salt
        self._aead, self._base, commitment = _derive(input_key, salt, context, key_size)
        self.header = salt + commitment

    def encrypt(self, first: int, plaintext: bytes | memoryview, *, final: bool) -> bytearray:
        """The ciphertext of the chunks from number ``first`` on, whose plaintext is
        ``plaintext``; ``final`` when it ends the message (its last chunk short, maybe
        empty). Not final, ``plaintext`` must be whole chunks.

        Raises:
            InvalidInputError: a part that does not end the message is not whole chunks.
        """
        view = memoryview(plaintext).cast("B")
        full, rest = divmod(len(view), CHUNK)
        if rest and not final:
            raise InvalidInputError(
                f"{len(view)} bytes are not whole {CHUNK}-byte chunks, and do not end the message",
                hint="cut a message into parts at chunk boundaries",
            )
        out = bytearray(full * CT_CHUNK + (rest + TAG if final else 0))
        cview = memoryview(out)
        for index in range(full):
            chunk = view[index * CHUNK : (index + 1) * CHUNK]
            at = index * CT_CHUNK
            self._aead.encrypt_into(
                _nonce(self._base, first + index), chunk, None, cview[at : at + CT_CHUNK]
            )
        if final:
            self._aead.encrypt_into(
                _nonce(self._base, first + full),
                view[full * CHUNK :],
                None,
                cview[full * CT_CHUNK :],
            )
        return out


def decrypt_bytes(
    input_key: bytes, context: bytes, ciphertext: bytes | memoryview, *, key_size: int = 32
) -> bytearray:
    """:func:`iter_decrypt` of a ciphertext held in memory, into one buffer sized to it;
    raises :class:`IntegrityError` as it does."""
    view = memoryview(ciphertext).cast("B")
    if len(view) < HEADER_SIZE:
        raise IntegrityError(
            "encrypted artifact is truncated: its 56-byte header is incomplete",
            hint="the stored blob is damaged; restore it from a replica",
        )
    aead, base, commitment = _derive(input_key, bytes(view[:SALT_SIZE]), context, key_size)
    if not hmac.compare_digest(commitment, bytes(view[SALT_SIZE:HEADER_SIZE])):
        raise IntegrityError(
            "encrypted artifact's key commitment does not match (wrong key or context)",
            hint="the header or body was altered, or the artifact belongs elsewhere",
        )
    body = view[HEADER_SIZE:]
    full, rest = divmod(len(body), CT_CHUNK)
    if rest < TAG:
        raise IntegrityError(
            "encrypted artifact is truncated: its short final chunk is missing",
            hint="the stored blob lost its tail; restore it from a replica",
        )
    out = bytearray(full * CHUNK + rest - TAG)
    pview = memoryview(out)
    index = 0
    try:
        for index in range(full + 1):
            start = index * CT_CHUNK
            end = min(start + CT_CHUNK, len(body))
            target = pview[index * CHUNK : index * CHUNK + end - start - TAG]
            aead.decrypt_into(_nonce(base, index), body[start:end], None, target)
    except Exception as exc:  # cryptography's InvalidTag: a chunk does not authenticate
        raise IntegrityError(
            f"encrypted artifact chunk {index} does not authenticate "
            "(modified, reordered, truncated or extended ciphertext)",
            hint="the stored blob is damaged or was tampered with; restore it from a replica",
        ) from exc
    return out


def iter_decrypt(
    input_key: bytes, context: bytes, readinto: ReadInto, *, key_size: int = 32
) -> Iterator[memoryview]:
    """Decrypt a ciphertext stream, yielding authenticated plaintext batches.

    Each yielded view stays valid until the one after the next is requested (two
    buffers alternate, so a caller may write one in the background). The last
    chunk is authenticated before the generator ends; any failure (wrong key or
    context, modified, reordered, truncated or extended ciphertext) raises
    :class:`IntegrityError`, and every later ``next()`` raises ``StopIteration``
    only after that error has been raised once.
    """
    header = bytearray(HEADER_SIZE)
    if _fill(readinto, memoryview(header)) < HEADER_SIZE:
        raise IntegrityError(
            "encrypted artifact is truncated: its 56-byte header is incomplete",
            hint="the stored blob is damaged; restore it from a replica",
        )
    aead, base, commitment = _derive(input_key, bytes(header[:SALT_SIZE]), context, key_size)
    if not hmac.compare_digest(commitment, bytes(header[SALT_SIZE:])):
        raise IntegrityError(
            "encrypted artifact's key commitment does not match (wrong key or context)",
            hint="the header or body was altered, or the artifact belongs elsewhere",
        )
    cipher = bytearray(BATCH_CHUNKS * CT_CHUNK)
    cview = memoryview(cipher)
    pviews = (
        memoryview(bytearray(BATCH_CHUNKS * CHUNK)),
        memoryview(bytearray(BATCH_CHUNKS * CHUNK)),
    )
    counter = 0
    turn = 0
    while True:
        pview = pviews[turn % 2]
        turn += 1
        filled = _fill(readinto, cview)
        final = filled < len(cview)
        full, rest = divmod(filled, CT_CHUNK)
        out = 0
        try:
            for index in range(full):
                start = index * CT_CHUNK
                aead.decrypt_into(
                    _nonce(base, counter),
                    cview[start : start + CT_CHUNK],
                    None,
                    pview[out : out + CHUNK],
                )
                counter += 1
                out += CHUNK
            if final:
                if rest < TAG:
                    raise IntegrityError(
                        "encrypted artifact is truncated: its short final chunk is missing",
                        hint="the stored blob lost its tail; restore it from a replica",
                    )
                start = full * CT_CHUNK
                aead.decrypt_into(
                    _nonce(base, counter), cview[start:filled], None, pview[out : out + rest - TAG]
                )
                out += rest - TAG
        except IntegrityError:
            raise
        except Exception as exc:  # cryptography's InvalidTag: a chunk does not authenticate
            raise IntegrityError(
                f"encrypted artifact chunk {counter} does not authenticate "
                "(modified, reordered, truncated or extended ciphertext)",
                hint="the stored blob is damaged or was tampered with; restore it from a replica",
            ) from exc
        if out:
            yield pview[:out]
        if final:
            return


def decrypt_stream(
    input_key: bytes, context: bytes, readinto: ReadInto, write: Write, *, key_size: int = 32
) -> int:
    """Decrypt to ``write``; returns the plaintext length. See :func:`iter_decrypt`."""
    total = 0
    background = _BackgroundWriter(write)
    try:
        for piece in iter_decrypt(input_key, context, readinto, key_size=key_size):
            background.submit(piece)
            total += len(piece)
    finally:
        background.close()
    return total
