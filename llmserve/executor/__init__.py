"""Executors run a SchedulerOutput: the cost model (virtual time) now, real models later."""

from llmserve.executor.base import Executor, StepResult
from llmserve.executor.cost_model import CostModel, CostModelExecutor, StepSample

__all__ = ["CostModel", "CostModelExecutor", "Executor", "StepResult", "StepSample"]
