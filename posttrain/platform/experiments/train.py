"""Run a frozen manifest with TRL: the model, the blend as a dataset, the trainer, and the
checkpoint registered in ``lineage.checkpoints``.

Needs the ``train`` extra (TRL, torch, datasets). The trainer reads exactly the examples of
the pinned blend, in blend order, and the SHA-256 of what it read is stored with the
checkpoint: two runs of one manifest read the same bytes when their digests agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from posttrain.platform.errors import MissingDependencyError, PosttrainError
from posttrain.platform.experiments.blend_stream import StreamDigest, iter_examples
from posttrain.platform.experiments.config import (
    TINY,
    ExperimentConfig,
    TinyModel,
    TrainerKind,
    trainer_args_class,
    trainer_settings,
)
from posttrain.platform.experiments.manifest import Checkpoint, Manifest, record_checkpoint
from posttrain.platform.warehouse import Warehouse

TRAIN_REQUIREMENT = "posttrain[train]"

Log = Callable[[str], None]


class TrainingError(PosttrainError):
    """A training run failed; its manifest stays in lineage.experiments."""


def build_tiny_model(vocab_size: int, tiny: TinyModel, seed: int) -> Any:
    """A randomly initialized Qwen2 built from a config: the same weights for one seed."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=tiny.hidden_size,
        intermediate_size=tiny.intermediate_size,
        num_hidden_layers=tiny.layers,
        num_attention_heads=tiny.heads,
        num_key_value_heads=tiny.kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)


def load_model(config: ExperimentConfig, vocab_size: int) -> Any:
    """The base model: tiny from its config, else a local folder or hub id."""
    if config.model.base == TINY:
        return build_tiny_model(vocab_size, config.model.tiny or TinyModel(), config.seed)
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(config.model.base)
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"model {config.model.base!r}: cannot load it as a local folder or hub id: {exc}"
        ) from None


def examples_needed(config: ExperimentConfig) -> int | None:
    """How many examples a run reads: ``data.max_examples``, else enough for ``max_steps``
    optimizer steps on one process (``None``: the whole blend)."""
    if config.data.max_examples is not None:
        return config.data.max_examples
    settings = config.trainer.settings
    steps = int(settings.get("max_steps", -1))
    if steps <= 0:
        return None
    batch = int(settings.get("per_device_train_batch_size", 8))
    accumulation = int(settings.get("gradient_accumulation_steps", 1))
    return steps * batch * accumulation


def trainer_arguments(config: ExperimentConfig, output_dir: Path) -> Any:
    """TRL's ``SFTConfig``/``DPOConfig``/``GRPOConfig`` of the experiment."""
    import torch

    kind = config.trainer.kind
    owned: dict[str, Any] = {
        "output_dir": str(output_dir),
        "seed": config.seed,
        "data_seed": config.seed,
    }
    if kind in (TrainerKind.SFT, TrainerKind.DPO):
        owned["max_length"] = config.data.seq_length
    if kind == TrainerKind.SFT:
        owned["packing"] = config.data.packing
    defaults: dict[str, Any] = {
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "use_cpu": not torch.cuda.is_available(),
    }
    settings = trainer_settings(kind, config.trainer.settings)
    return trainer_args_class(kind)(**{**defaults, **settings, **owned})


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


def _reward_function(warehouse: Warehouse, manifest: Manifest) -> Any:
    from posttrain.platform.rl.rewards import reward_function

    ((table, snapshot_id),) = manifest.inputs().items()
    return reward_function(warehouse, table, snapshot_id=snapshot_id)


@dataclass(frozen=True)
class TrainResult:
    """The registered checkpoint, and the examples the trainer read."""

    checkpoint: Checkpoint


def run_training(
    warehouse: Warehouse, manifest: Manifest, output_root: Path, log: Log = print
) -> TrainResult:
    """Train the manifest's model on its pinned blend and register the checkpoint.

    Raises:
        MissingDependencyError: the ``train`` extra is not installed.
        TrainingError: the model, the trainer or the run failed.
    """
    try:
        import trl  # noqa: F401
    except ImportError:
        raise MissingDependencyError("posttrain experiment launch", TRAIN_REQUIREMENT) from None
    from posttrain.platform.gold.tokenize import load_tokenizer

    config = manifest.experiment_config()
    output_dir = output_root / manifest.experiment_id
    tokenizer = load_tokenizer(config.model.tokenizer_name)
    digest = StreamDigest()
    rows = list(
        iter_examples(warehouse, manifest.blend, limit=examples_needed(config), digest=digest)
    )
    if not rows:
        raise TrainingError(f"{manifest.experiment_id}: the blend yielded no example")
    log(f"read {digest.examples} examples from the blend (sha256 {digest.hexdigest()[:16]})")
    model = load_model(config, len(tokenizer))
    args = trainer_arguments(config, output_dir)
    trainer = _trainer(warehouse, manifest, config, model, tokenizer, args, _dataset(rows))
    log(f"training {config.trainer.kind} on {config.model.base} into {output_dir}")
    try:
        result = trainer.train()
    except Exception as exc:  # TRL and torch raise many types; the run failed either way
        raise TrainingError(f"{manifest.experiment_id}: training failed: {exc}") from exc
    step = int(trainer.state.global_step)
    path = output_dir / f"checkpoint-{step}"
    trainer.save_model(str(path))
    tokenizer.save_pretrained(str(path))
    metrics = {k: v for k, v in result.metrics.items() if _finite(v)}
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        metrics["last_loss"] = losses[-1]
    checkpoint = Checkpoint(
        checkpoint_id=f"{manifest.experiment_id}-step{step}",
        path=str(path),
        experiment_id=manifest.experiment_id,
        manifest_id=manifest.manifest_id,
        step=step,
        examples=digest.examples,
        stream_digest=digest.hexdigest(),
        metrics=metrics,
        created_at=datetime.now(UTC),
    )
    record_checkpoint(warehouse, checkpoint, manifest)
    log(f"checkpoint {checkpoint.checkpoint_id} at {path}")
    return TrainResult(checkpoint)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _trainer(
    warehouse: Warehouse,
    manifest: Manifest,
    config: ExperimentConfig,
    model: Any,
    tokenizer: Any,
    args: Any,
    dataset: Any,
) -> Any:
    import trl

    kind = config.trainer.kind
    if kind == TrainerKind.SFT:
        return trl.SFTTrainer(  # type: ignore[attr-defined]
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer
        )
    if kind == TrainerKind.DPO:
        # A model built from a config has no hub id to load a reference from.
        reference = load_model(config, len(tokenizer)) if config.model.base == TINY else None
        return trl.DPOTrainer(  # type: ignore[attr-defined]
            model=model,
            ref_model=reference,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    return trl.GRPOTrainer(  # type: ignore[attr-defined]
        model=model,
        reward_funcs=_reward_function(warehouse, manifest),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
