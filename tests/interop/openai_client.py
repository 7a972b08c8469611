"""Owns the `openai` interop scenario: the official OpenAI Python package (pinned in requirements.txt) as a client of `agent-host serve`'s /v1/chat/completions.

    openai_client.py --base-url http://127.0.0.1:PORT/v1 --model MODEL

Runs one non-streamed and one streamed completion (with usage), lists the
models, and provokes one error; prints ONE JSON object with what the package
saw. tests/it/serve.rs asserts on it, so a server bug shows up as a wrong
value rather than as a traceback to parse.
"""

from __future__ import annotations

import argparse
import json

import openai


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    # agent-host needs no key on loopback; the package insists on one.
    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0)
    seen: dict = {}

    completion = client.chat.completions.create(
        model=args.model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "echo ping please"},
        ],
    )
    seen["plain"] = {
        "object": completion.object,
        "content": completion.choices[0].message.content,
        "role": completion.choices[0].message.role,
        "finish_reason": completion.choices[0].finish_reason,
        "total_tokens": completion.usage.total_tokens if completion.usage else None,
    }

    pieces = []
    finish = None
    usage = None
    for chunk in client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    seen["streamed"] = {"content": "".join(pieces), "finish_reason": finish, "total_tokens": usage}

    seen["models"] = [model.id for model in client.models.list()]

    try:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
        seen["unknown_model"] = None
    except openai.NotFoundError as err:
        seen["unknown_model"] = {"status": err.status_code, "message": str(err)}

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
