"""Build a model from the command line's words: a preset (seeded-random weights) or a GGUF
file, on `cpu` or `cuda:N`."""

from __future__ import annotations

from dataclasses import dataclass

from llmserve.model.backend import Backend, make_backend
from llmserve.model.config import ModelConfig, preset
from llmserve.model.runner import ModelRunner
from llmserve.model.weights import Weights, random_weights


@dataclass(frozen=True)
class LoadedModel:
    """Weights on a backend, ready to get runners (each with its own KV cache)."""

    config: ModelConfig
    weights: Weights
    backend: Backend
    source: str  # "preset tiny (random, seed 0)" or "gguf PATH"

    def runner(self, num_blocks: int, block_size: int, num_host_blocks: int,
               fused: bool | None = None) -> ModelRunner:  # fmt: skip
        """A runner with its own KV cache; `fused` as in ModelRunner (None: where they apply)."""
        return ModelRunner.create(
            self.config,
            self.backend,
            num_blocks=num_blocks,
            block_size=block_size,
            num_host_blocks=num_host_blocks,
            weights=self.weights,
            fused=fused,
        )


def load_model(
    preset_name: str = "tiny",
    device: str = "cpu",
    *,
    gguf: str | None = None,
    seed: int = 0,
    dtype: str | None = None,
) -> LoadedModel:
    """A GGUF file's model when `gguf` is given (the preset is then ignored), else the
    preset's shape with seeded-random weights."""
    backend = make_backend(device, dtype)
    with backend.activate():
        if gguf is not None:
            from llmserve.model.gguf_io import load_gguf

            config, weights = load_gguf(gguf, backend)
            return LoadedModel(config, weights, backend, f"gguf {gguf}")
        config = preset(preset_name)
        weights = random_weights(config, backend, seed)
        return LoadedModel(config, weights, backend, f"preset {config.name} (random, seed {seed})")
