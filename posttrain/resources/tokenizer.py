"""The tokenizer gold corpora are tokenized with, as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from posttrain.platform.gold.tokenize import SHIPPED_TOKENIZER, TokenizeConfig, load_tokenizer


class TokenizerResource(dg.ConfigurableResource):
    """A ``transformers`` tokenizer with a chat template: shipped name, local path or hub name.

    The default is the small tokenizer shipped in the repository, so the demo runs offline;
    point ``name_or_path`` at your model's tokenizer directory (or a cached hub name) to
    build corpora for it.
    """

    name_or_path: str = Field(
        default=SHIPPED_TOKENIZER,
        description="Shipped tokenizer name, local directory, or Hugging Face hub name.",
    )
    max_length: int | None = Field(
        default=None, description="Truncate tokenized conversations longer than this."
    )

    def tokenize_config(self) -> TokenizeConfig:
        """The platform config; loading the tokenizer here fails fast on a bad path."""
        config = TokenizeConfig(tokenizer=self.name_or_path, max_length=self.max_length)
        load_tokenizer(config.tokenizer)
        return config
