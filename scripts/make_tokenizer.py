"""Train the small chat tokenizer posttrain ships, so the demo and tests tokenize offline.

A byte-level BPE with an 8k vocabulary, trained with the ``tokenizers`` library on the
Python standard library's own source (code, comments, docstrings and the pydoc topic
pages: real English and code present on every machine with Python), plus a ChatML chat
template that marks assistant output with ``{% generation %}`` for assistant-only loss.

The result is byte-identical for the same Python standard library and ``tokenizers``
version; ``provenance.json`` records both, and the SHA-256 of the training text, so a
rebuild can be checked against the shipped copy.

Usage:
    .venv/bin/python scripts/make_tokenizer.py            # rebuild the shipped tokenizer
    .venv/bin/python scripts/make_tokenizer.py --out /tmp/tok
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer

NAME = "posttrain-chat-8k"
DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "posttrain" / "platform" / "gold" / "tokenizer" / NAME
)
VOCAB_SIZE = 8192
# Control tokens: never produced from text by BPE merges, skipped by `decode(skip_special_tokens)`.
PAD_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [PAD_TOKEN, "<|im_start|>", "<|im_end|>"]
# Tool markup: atomic tokens, but kept in decoded text (as in Qwen2.5's tokenizer).
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
EOS_TOKEN = "<|im_end|>"  # a chat model stops after its turn

# ChatML with tool calls. Assistant output, including the closing <|im_end|> (the model must
# learn to stop), is inside {% generation %}; the newline after it is prompt formatting.
# Every tag trims whitespace, so the layout below never leaks into the rendered text.
CHAT_TEMPLATE = r"""
{%- if tools %}
    {{- raise_exception('posttrain-chat-8k renders no tool schemas: describe tools in a message') }}
{%- endif %}
{%- for message in messages %}
    {%- set content = message.content or '' %}
    {%- if message.role == 'assistant' %}
        {{- '<|im_start|>assistant\n' }}
        {%- generation %}
            {{- content }}
            {%- for call in message.tool_calls or [] %}
                {%- if content or not loop.first %}
                    {{- '\n' }}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' + (call.function.name or '') }}
                {{- '", "arguments": ' + (call.function.arguments or '{}') + '}\n</tool_call>' }}
            {%- endfor %}
            {{- '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\n' }}
    {%- elif message.role == 'tool' %}
        {{- '<|im_start|>tool\n<tool_response>\n' + content + '\n</tool_response><|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
""".strip()


def corpus_files(stdlib: Path) -> list[Path]:
    """The standard library's ``.py`` files without test suites, in a fixed (sorted) order."""
    skipped = {"site-packages", "dist-packages", "test", "tests", "idle_test"}
    files = [path for path in stdlib.rglob("*.py") if not skipped & set(path.parts)]
    return sorted(files, key=lambda path: path.relative_to(stdlib).as_posix())


def iter_texts(files: list[Path], digest: hashlib._Hash) -> Iterator[str]:
    """Each file's text (undecodable bytes replaced), feeding ``digest`` on the way."""
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        digest.update(text.encode())
        yield text


def train(files: list[Path], digest: hashlib._Hash) -> Tokenizer:
    """A byte-level BPE (GPT-2 pre-tokenization, no normalizer: decoding is lossless)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    # Untrimmed offsets: a token's character span is exactly the text it encodes.
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[
            *(AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS),
            *(AddedToken(token, special=False, normalized=False) for token in TOOL_TOKENS),
        ],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(iter_texts(files, digest), trainer=trainer, length=len(files))
    return tokenizer


def save(tokenizer: Tokenizer, out: Path, provenance: dict[str, object]) -> None:
    """Write the tokenizer in the layout ``transformers.AutoTokenizer`` loads offline."""
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="right",
        truncation_side="right",
        clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(out)
    # transformers 5 writes its new class name; the alias below also loads in transformers 4.
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args(argv)

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = corpus_files(stdlib)
    digest = hashlib.sha256()
    tokenizer = train(files, digest)
    provenance: dict[str, object] = {
        "name": NAME,
        "vocab_size": tokenizer.get_vocab_size(),
        "trained_on": f"Python {sys.version.split()[0]} standard library, {len(files)} .py files",
        "training_text_sha256": digest.hexdigest(),
        "tokenizers_version": tokenizers.__version__,
        "built_by": "scripts/make_tokenizer.py",
    }
    save(tokenizer, args.out, provenance)
    size_kb = sum(path.stat().st_size for path in args.out.iterdir()) / 1024
    print(f"{NAME}: vocab {tokenizer.get_vocab_size()}, {size_kb:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
