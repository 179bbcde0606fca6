"""llmserve: the LLM serving workload of xsched-py: paged KV accounting, request scheduling,
a cost-model executor and a simulator (model executors and servers come at the edges)."""

__version__ = "0.1.0"
