"""Stable identifiers and seeded hashes: every id and random choice derives from these."""

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator


def stable_hash(*parts: object) -> int:
    """A 64-bit integer that depends only on the parts, the same on every machine and process."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def stable_hashes(prefix: tuple, lasts: Iterable) -> Iterator[int]:
    """`stable_hash(*prefix, last)` for each of `lasts`: the prefix is hashed once and its state copied, two thirds
    of the cost per key where every copy in a pool draws a key (selectors/random_k.py)."""
    start = hashlib.blake2b("".join(f"{part}\x1f" for part in prefix).encode("utf-8"), digest_size=8)
    for last in lasts:
        hasher = start.copy()
        hasher.update(str(last).encode("utf-8"))
        yield int.from_bytes(hasher.digest(), "big")


def stable_id(text: str) -> str:
    return f"{stable_hash(text):016x}"


def stable_ids(texts: Iterable[str]) -> list[str]:
    """`stable_id` of each text: the same blake2b of the one part, without a call and a join per text, for the read
    by column (ingest/columnar.py)."""
    blake2b = hashlib.blake2b
    return [blake2b(text.encode("utf-8"), digest_size=8).hexdigest() for text in texts]


def stream_sha256(stream, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a binary stream, read in chunks so that a large file never sits in memory."""
    digest = hashlib.sha256()
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
    return digest.hexdigest()


def normalize_text(text: str) -> str:
    """The text kept in the output: NFC, outer whitespace stripped, inner layout (newlines, code) kept."""
    return unicodedata.normalize("NFC", text).strip()


def identity_key(text: str) -> str:
    """The form two texts must share to count as the same text: NFC with every whitespace run collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())
