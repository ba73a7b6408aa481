"""Outbound HTTP from Python: ``http.get(url)`` (input url), with the secret
named by input token-secret as a bearer token. Outputs status and body; a
refused request is caught and its kind and message become the outputs
outcome and message (a step may handle a refusal like any error)."""

from __future__ import annotations

from stepbox_sdk import Context, StepboxError, http, input, require_input, require_secret, set_output


def run(ctx: Context) -> None:
    url = require_input("url")
    headers = {}
    token_secret = input("token-secret")
    if token_secret is not None:
        headers["authorization"] = f"Bearer {require_secret(token_secret)}"
    try:
        response = http.get(url, headers=headers)
    except StepboxError as e:
        set_output("outcome", e.kind)
        set_output("message", e.message)
        return
    set_output("outcome", "ok")
    set_output("status", str(response.status))
    set_output("body", response.text())
