"""The Llama-style decoder: shape presets, NumPy/CuPy backend, weights (random or GGUF),
paged-KV forward step, a plain reference forward, and a byte-level tokenizer."""

from llmserve.model.backend import Backend, BackendUnavailableError, make_backend
from llmserve.model.config import PRESETS, ModelConfig, preset
from llmserve.model.kv_cache import PagedKVCache
from llmserve.model.reference import reference_logits
from llmserve.model.runner import ModelRunner, SeqWork, StepError, StepOutput
from llmserve.model.tokenizer import ByteTokenizer, synthetic_prompt
from llmserve.model.weights import LayerWeights, Weights, random_weights

__all__ = [
    "PRESETS",
    "Backend",
    "BackendUnavailableError",
    "ByteTokenizer",
    "LayerWeights",
    "ModelConfig",
    "ModelRunner",
    "PagedKVCache",
    "SeqWork",
    "StepError",
    "StepOutput",
    "Weights",
    "make_backend",
    "preset",
    "random_weights",
    "reference_logits",
    "synthetic_prompt",
]
