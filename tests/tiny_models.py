"""A tiny, randomly initialized causal LM for the TRL tests (no download, CPU, seconds)."""

from __future__ import annotations

from typing import Any


def tiny_model(vocab_size: int) -> Any:
    """A two-layer Qwen2 with ``vocab_size`` tokens, the same weights every call (seed 0)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)
