"""The viewer's actions that write: curation on review branches, generation and vibe
checks. Each checks the principal's role first and every form its CSRF token."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from posttrain.platform import browse
from posttrain.platform.errors import PosttrainError
from posttrain.viewer.access import AccessDenied, allowed
from posttrain.viewer.app import _int, _one_row, _principal, _render, _state, _url


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _check_origin(request: Request, form: Mapping[str, str]) -> None:
    """A form post must carry the page's token: another site cannot make the browser of a
    curator post here (the token is in a cookie it cannot read)."""
    expected = request.cookies.get("posttrain_csrf")
    if not expected or not secrets.compare_digest(expected, form.get("csrf", "")):
        raise AccessDenied("the form expired: reload the page and try again")


async def curate(request: Request) -> Response:
    from posttrain.platform import curation, notes

    principal = _principal(request)
    form = await _form(request)
    _check_origin(request, form)
    name = request.path_params["name"]
    action = form.get("action", "")
    branch = form.get("branch", "").strip() or f"review-{principal.name}"
    key = form.get("key", "")
    warehouse = _state(request).warehouse
    allowed(
        principal,
        "publish" if action == "publish" else "note" if action in ("flag", "comment") else "edit",
    )
    # Reading the row checks that the principal may see it (table and workspace).
    if action != "publish":
        await run_in_threadpool(_one_row, request, name, None, key, principal)
    key_columns = browse.key_columns(name)

    def work() -> str:
        if action in ("flag", "comment"):
            notes.add_note(
                warehouse, name, branch, key, action, form.get("text", ""), principal.name
            )
            return f"{action} recorded on {name}@{branch}"
        if action == "drop":
            notes.ensure_review_branch(warehouse, name, branch, principal.name)
            literal = key.replace("'", "''")
            result = curation.drop_rows(
                warehouse, name, branch, f"{key_columns[0]} = '{literal}'", curator=principal.name
            )
            return result.describe()
        if action == "fix":
            notes.ensure_review_branch(warehouse, name, branch, principal.name)
            patch = curation.parse_patch(form.get("patch", ""))
            result = curation.fix_record(
                warehouse, name, branch, key, patch, curator=principal.name
            )
            return result.describe()
        if action == "publish":
            published = curation.publish(warehouse, name, branch, curator=principal.name)
            notes.publish_notes(warehouse, name, branch)
            return published.describe()
        raise HTTPException(400, f"unknown action {action!r}")

    try:
        message = await run_in_threadpool(work)
    except PosttrainError as exc:
        message = f"refused: {exc}"
    target_ref = "main" if action == "publish" else branch
    if action == "drop" or action == "publish":
        return RedirectResponse(
            _url(request, f"/t/{name}", ref=target_ref, message=message), status_code=303
        )
    return RedirectResponse(
        _url(request, f"/t/{name}/row", ref=target_ref, key=key, branch=branch, message=message),
        status_code=303,
    )


async def generate(request: Request) -> Response:
    from posttrain.platform.generate import (
        VibeCheck,
        generator_for,
        prompt_of,
        record_vibe_checks,
        run_generation,
    )

    principal = _principal(request)
    allowed(principal, "generate")
    form = await _form(request)
    _check_origin(request, form)
    state = _state(request)
    checkpoint = state.checkpoints.get(form.get("checkpoint", ""), "")
    if not checkpoint:
        raise HTTPException(400, "choose one of the configured checkpoints")
    name = form.get("table", "")
    key = form.get("key", "")
    ref = form.get("ref") or None
    _, row = await run_in_threadpool(_one_row, request, name, ref, key, principal)

    def work() -> tuple[str, float, str, str | None]:
        generator = generator_for(checkpoint)
        prompt, stored = prompt_of(row)
        answer, seconds = run_generation(
            generator, prompt, _int(form.get("max_new_tokens"), 64, 1, 1024)
        )
        record_vibe_checks(
            state.warehouse,
            [
                VibeCheck(
                    session=f"row:{name}",
                    prompt=prompt,
                    answer=answer,
                    checkpoint=generator.checkpoint,
                    backend=generator.backend,
                    seconds=seconds,
                    created_by=principal.name,
                    source_table=name,
                    source_key=key,
                    stored_answer=stored,
                )
            ],
        )
        return answer, seconds, generator.checkpoint, stored

    try:
        answer, seconds, checkpoint_id, stored = await run_in_threadpool(work)
    except PosttrainError as exc:
        return _render(request, "_answer.html", error=str(exc), status=200)
    return _render(
        request,
        "_answer.html",
        answer=answer,
        seconds=seconds,
        checkpoint=checkpoint_id,
        stored=stored,
        error="",
    )


async def vibe(request: Request) -> Response:
    from posttrain.platform.generate import (
        VibeCheck,
        generator_for,
        record_vibe_checks,
        run_generation,
    )
    from posttrain.platform.schemas import TableName

    principal = _principal(request)
    allowed(principal, "read")
    state = _state(request)
    session = request.query_params.get("session") or secrets.token_hex(4)
    message = ""
    if request.method == "POST":
        allowed(principal, "generate")
        form = await _form(request)
        _check_origin(request, form)
        session = form.get("session") or session
        prompts = [p.strip() for p in form.get("prompts", "").split("\n---\n") if p.strip()]
        chosen = [
            state.checkpoints[c]
            for c in (form.get("a", ""), form.get("b", ""))
            if c in state.checkpoints
        ]
        if not prompts or not chosen:
            message = "type a prompt and choose at least one checkpoint"
        else:

            def work() -> int:
                checks = []
                for checkpoint in dict.fromkeys(chosen):
                    generator = generator_for(checkpoint)
                    for prompt in prompts:
                        messages = [{"role": "user", "content": prompt}]
                        answer, seconds = run_generation(
                            generator, messages, _int(form.get("max_new_tokens"), 64, 1, 1024)
                        )
                        checks.append(
                            VibeCheck(
                                session,
                                messages,
                                answer,
                                generator.checkpoint,
                                generator.backend,
                                seconds,
                                principal.name,
                            )
                        )
                record_vibe_checks(state.warehouse, checks)
                return len(checks)

            try:
                saved = await run_in_threadpool(work)
                message = f"saved {saved} answer(s) to {TableName.LINEAGE_VIBE_CHECKS}"
            except PosttrainError as exc:
                message = f"refused: {exc}"
        return RedirectResponse(
            _url(request, "/vibe", session=session, message=message), status_code=303
        )
    rows: list[dict[str, Any]] = []
    if state.warehouse.exists(TableName.LINEAGE_VIBE_CHECKS):
        data = await run_in_threadpool(
            state.warehouse.read,
            TableName.LINEAGE_VIBE_CHECKS,
            row_filter=f"session = '{session.replace(chr(39), '')}'",
        )
        rows = sorted(data.to_pylist(), key=lambda r: (r["created_at"], r["checkpoint"]))
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        text = (row["prompt"] or [{}])[-1].get("content") or ""
        by_prompt.setdefault(text, []).append(row)
    return _render(
        request,
        "vibe.html",
        principal=principal,
        session=session,
        checkpoints=state.checkpoints,
        by_prompt=by_prompt,
        message=request.query_params.get("message") or message,
    )
