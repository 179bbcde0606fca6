"""A byte-level tokenizer (token = byte, plus BOS/EOS/PAD), and synthetic prompts for
workloads that give only a prompt length."""

from __future__ import annotations

import hashlib

import numpy as np

BOS, EOS, PAD = 256, 257, 258


class ByteTokenizer:
    """UTF-8 bytes as token ids 0-255; ids 256-258 are BOS, EOS and PAD. Ids a larger
    vocabulary has beyond those decode to nothing (random weights emit them freely)."""

    vocab_size = 259
    bos_id, eos_id, pad_id = BOS, EOS, PAD

    def encode(self, text: str, bos: bool = True) -> list[int]:
        ids = list(text.encode("utf-8"))
        return [BOS, *ids] if bos else ids

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")


def synthetic_prompt(request_id: str, length: int, vocab_size: int, seed: int = 0) -> list[int]:
    """`length` token ids for a request that names only its prompt length: BOS, then ids
    drawn from the request id and `seed` (the same request gets the same prompt)."""
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    body = rng.integers(0, min(vocab_size, 256), size=max(length - 1, 0)).tolist()
    return ([BOS] if vocab_size > BOS else [0])[:length] + body
