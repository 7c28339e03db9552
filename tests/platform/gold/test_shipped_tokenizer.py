"""The tokenizer shipped in the package loads offline and is rebuilt byte for byte by its script."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from posttrain.platform.gold.chat_render import SHIPPED_TOKENIZERS_DIR
from posttrain.platform.gold.tokenize import SHIPPED_TOKENIZER, load_tokenizer, resolve_tokenizer

SHIPPED = SHIPPED_TOKENIZERS_DIR / SHIPPED_TOKENIZER
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "make_tokenizer.py"


def test_shipped_name_resolves_to_the_package_directory() -> None:
    assert Path(resolve_tokenizer(SHIPPED_TOKENIZER)) == SHIPPED
    assert resolve_tokenizer("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"


def test_loads_with_auto_tokenizer_and_declares_its_special_tokens() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(SHIPPED)
    assert len(tokenizer) == 8192
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_decoding_is_lossless() -> None:
    tokenizer = load_tokenizer(SHIPPED_TOKENIZER)
    text = "def f(x):\n\treturn x  # naïve 👋🏽 你好\r\n"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_chat_control_tokens_are_single_tokens() -> None:
    tokenizer = load_tokenizer(SHIPPED_TOKENIZER)
    for token in ["<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token


def test_shipped_files_stay_small() -> None:
    assert sum(path.stat().st_size for path in SHIPPED.iterdir()) < 1_000_000


def test_make_tokenizer_rebuilds_the_shipped_files_byte_for_byte(tmp_path: Path) -> None:
    provenance = json.loads((SHIPPED / "provenance.json").read_text())
    python = f"Python {sys.version.split()[0]} "
    if not provenance["trained_on"].startswith(python):
        pytest.skip(f"shipped tokenizer was trained on {provenance['trained_on']}")
    spec = importlib.util.spec_from_file_location("make_tokenizer", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out", str(tmp_path)])
    for shipped in SHIPPED.iterdir():
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name
