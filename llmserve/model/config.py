"""Model shapes: the Llama-style decoder's dimensions, and the named presets."""

from __future__ import annotations

from dataclasses import dataclass, replace

from llmserve.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions of a Llama-style decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU).

    `n_kv_heads` divides `n_heads` (grouped-query attention); `head_dim` is
    `d_model / n_heads`. `tie_embeddings`: the LM head reuses the token embedding.
    """

    name: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5
    max_position: int = 8192
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "ffn_dim",
                     "max_position"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model {self.name!r}: {name} must be an integer >= 1, got {value!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"model {self.name!r}: d_model {self.d_model} is not a multiple of "
                f"n_heads {self.n_heads}"
            )
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"model {self.name!r}: n_heads {self.n_heads} is not a multiple of "
                f"n_kv_heads {self.n_kv_heads}"
            )
        if self.head_dim % 2:
            raise ConfigError(f"model {self.name!r}: head_dim {self.head_dim} must be even for RoPE")
        if not self.rope_theta > 0 or not self.norm_eps > 0:
            raise ConfigError(f"model {self.name!r}: rope_theta and norm_eps must be > 0")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.n_heads // self.n_kv_heads

    @property
    def qkv_dim(self) -> int:
        return (self.n_heads + 2 * self.n_kv_heads) * self.head_dim

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache bytes per token at 2 bytes per value (float16); x2 for float32."""
        return self.n_layers * 2 * self.n_kv_heads * self.head_dim * 2

    def num_params(self) -> int:
        per_layer = (
            2 * self.d_model  # the two norms
            + self.d_model * self.qkv_dim
            + self.d_model * self.d_model  # attention output
            + 3 * self.d_model * self.ffn_dim
        )
        head = 0 if self.tie_embeddings else self.vocab_size * self.d_model
        return self.vocab_size * self.d_model + self.n_layers * per_layer + self.d_model + head

    def with_vocab(self, vocab_size: int) -> ModelConfig:
        return replace(self, vocab_size=vocab_size)


BYTE_VOCAB = 259  # 256 bytes + BOS, EOS, PAD (see tokenizer.py)

PRESETS: dict[str, ModelConfig] = {
    # For tests: milliseconds a step on one CPU core.
    "tiny": ModelConfig("tiny", BYTE_VOCAB, 64, 2, 4, 2, 160, rope_theta=10000.0, max_position=4096),
    # For CPU benchmarks that should feel a little like a model: ~30M parameters.
    "small": ModelConfig("small", BYTE_VOCAB, 512, 8, 8, 4, 1408, max_position=8192),
    # Llama-3-8B dimensions, for one H100 (float16 weights: about 16 GB).
    "llama3-8b": ModelConfig("llama3-8b", 128256, 4096, 32, 32, 8, 14336, max_position=8192),
}


def preset(name: str) -> ModelConfig:
    """The preset called `name` (tiny, small, llama3-8b)."""
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None
