"""posttrain: a data platform for LLM post-training.

The engine lives in :mod:`posttrain.platform` (plain Python, no Dagster); the Dagster
project (assets, resources, jobs) composes it in :mod:`posttrain.definitions`.
"""

__version__ = "0.1.0"
