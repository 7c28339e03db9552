"""``posttrain verify``: score one completion with the verifier of an RL prompt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from posttrain.cli._app import HomeOption, app, console


@app.command()
def verify(
    prompt_id: Annotated[
        str, typer.Option("--prompt-id", help="Row of gold.rl_prompts, e.g. humaneval:HumanEval/0.")
    ],
    completion: Annotated[
        Path,
        typer.Option(
            "--completion", help="File holding the completion's text; - reads standard input."
        ),
    ],
    table: Annotated[
        str | None, typer.Option(help="Table of RL prompts (default: gold.rl_prompts).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Print the reward the prompt's verifier gives the completion, and why.

    Exits 0 when the completion passes, 1 when it does not.
    """
    # Imported here: the verifiers and the sandbox are not needed for `posttrain --help`.
    from posttrain.cli._app import open_warehouse
    from posttrain.platform.errors import InputFormatError
    from posttrain.platform.rl.rewards import RL_PROMPTS, verify_completion

    if str(completion) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = completion.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFormatError(
                completion, "a readable UTF-8 text file", found=str(exc)
            ) from None
    result = verify_completion(open_warehouse(home), prompt_id, text, table or RL_PROMPTS)
    style = "green" if result.passed else "red"
    console.print(f"reward [bold {style}]{result.reward:g}[/]  {result.why}", highlight=False)
    raise typer.Exit(0 if result.passed else 1)
