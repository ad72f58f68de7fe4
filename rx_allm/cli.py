"""The ``rx-allm`` command: stream a reply to the terminal, or serve the chat app.

``rx-allm chat "prompt"`` picks a provider from ``--provider`` or from the first API key
found in the environment; with neither, it starts the built-in provider emulator and
streams from it over real HTTP (saying so in one line). ``--base-url`` alone means an
OpenAI-compatible server (a key is needed unless it is on this machine). The prompt may
come from stdin (``-``, or a pipe with no prompt). Ctrl-C disposes the subscription (the
request is cancelled) and exits with 130; a failed stream prints one ``rx-allm: error:``
line with the typed reason (and the retry delay and request id when known) and exits
with 1; a refused call (pre-flight) exits with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import rx_allm as allm
from rx_allm._loop import block_until
from rx_allm.errors import RxAllmError
from rx_allm.providers.anthropic import Anthropic
from rx_allm.providers.gemini import Gemini
from rx_allm.providers.openai import OpenAI

#: The HTTP providers, in the order their keys are looked for; each names its key variables and default model.
PROVIDERS: dict[str, type[OpenAI | Anthropic | Gemini]] = {
    "openai": OpenAI,
    "anthropic": Anthropic,
    "gemini": Gemini,
}
EMULATOR_KEY = "emulator-key-not-secret"
#: Sent to an OpenAI-compatible server on this machine when no key is given (local servers want none).
LOCAL_KEY = "no-key-needed-for-a-local-server"
ERROR_PREFIX = "rx-allm: error:"
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass
class Target:
    """Where a chat goes: the engine and a line explaining it (if any)."""

    engine: allm.Engine
    notice: str | None = None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rx-allm`` and ``python -m rx_allm``."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _provider_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider",
        choices=["openai", "anthropic", "gemini", "fake"],
        help="the provider (default: the first whose API key is set, else the built-in emulator)",
    )
    parser.add_argument("--model", help="model name (default depends on the provider)")
    parser.add_argument(
        "--base-url",
        help="the provider's base URL; alone, an OpenAI-compatible server (e.g. http://localhost:11434/v1)",
    )
    parser.add_argument("--api-key", help="the API key (default: the provider's environment variable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rx-allm", description="Stream LLM replies as ReactiveX Observables."
    )
    parser.add_argument("--version", action="version", version=f"rx-allm {allm.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="stream a reply to the terminal")
    chat.add_argument(
        "prompt",
        nargs="?",
        help="what to ask; '-' or a pipe reads it from stdin (optional with --interactive)",
    )
    _provider_arguments(chat)
    chat.add_argument(
        "--endpoint",
        choices=["chat_completions", "responses"],
        help="the OpenAI endpoint (default: by model)",
    )
    chat.add_argument("--timeout", type=float, help="seconds of silence before the stream fails (default 60)")
    chat.add_argument("--system", help="a system message")
    chat.add_argument("--max-tokens", type=int, help="the most tokens to generate")
    chat.add_argument("--temperature", type=float, help="sampling temperature, 0 to 2")
    chat.add_argument(
        "--interactive", "-i", action="store_true", help="keep talking: a REPL keeping the conversation"
    )
    chat.add_argument(
        "--tools", choices=["demo"], help="let the model call tools (demo: a clock and a calculator)"
    )
    shown = chat.add_mutually_exclusive_group()
    shown.add_argument("--events", action="store_true", help="show every event")
    shown.add_argument("--json", action="store_true", help="print events as JSON lines (for piping)")
    chat.set_defaults(handler=_chat)
    serve = commands.add_parser(
        "serve", help="serve the chat app (AI SDK and AG-UI endpoints, a page with tool calls and Stop)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="the port to listen on (default 8080; 0: any)")
    _provider_arguments(serve)
    serve.add_argument(
        "--redis", help="a Redis URL: replies and chats shared by every worker (extra `redis`)"
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes on the port (needs --redis)")
    serve.set_defaults(handler=_serve)
    return parser


# -- choosing the provider -------------------------------------------------------------
@contextlib.contextmanager
def target_for(args: argparse.Namespace) -> Iterator[Target]:
    """The engine for ``args``; starts (and stops) the emulator when no provider is configured."""
    provider = (
        args.provider
        or ("openai" if args.base_url else None)
        or next(
            (name for name, cls in PROVIDERS.items() if any(os.environ.get(n) for n in cls.env_vars)), None
        )
    )
    if provider == "fake":
        prompt = getattr(args, "prompt", None) or "hello"
        yield Target(_fake_tools_engine(prompt) if getattr(args, "tools", None) else _fake_engine(prompt))
        return
    if provider is not None:
        yield Target(_provider_engine(args, provider))
        return
    from rx_allm.testing.emulator import ProviderEmulator

    emulator = ProviderEmulator(responder=lambda sent: demo_reply(sent.json))
    with emulator.running():
        notice = (
            "rx-allm: no provider configured (no OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY): "
            f"streaming from the built-in provider emulator over real HTTP at {emulator.url}"
        )
        engine = allm.Engine(
            adapter="openai",
            adapter_opts={"base_url": emulator.base_url("openai"), "api_key": EMULATOR_KEY},
            model=args.model or OpenAI.default_model,
        )
        yield Target(engine, notice)


class Refused(Exception):
    """The command line cannot be served as given (a one-line reason, exit 2)."""


def _provider_engine(args: argparse.Namespace, provider: str) -> allm.Engine:
    """The engine of an explicit provider, or of ``--base-url`` alone (an OpenAI-compatible server)."""
    opts: dict[str, Any] = {"base_url": args.base_url} if args.base_url else {}
    key = args.api_key or next(
        (os.environ[n] for n in PROVIDERS[provider].env_vars if os.environ.get(n)), None
    )
    if key is None and args.base_url and not args.provider:
        if urlsplit(args.base_url).hostname not in _LOOPBACK:
            raise Refused(
                f"{args.base_url} is not on this machine: give its key with --api-key "
                f"(or {' / '.join(PROVIDERS[provider].env_vars)})"
            )
        key = LOCAL_KEY
    if key is not None:
        opts["api_key"] = key
    if getattr(args, "endpoint", None):
        opts["endpoint"] = args.endpoint
    return allm.Engine(
        adapter=provider, adapter_opts=opts, model=args.model or PROVIDERS[provider].default_model
    )


def demo_reply(body: Any, chunk_delay: float = 0.03) -> Any:
    """The emulator's reply to a Chat Completions request ``body``: a demo tool call, or an answer."""
    from rx_allm.testing.emulator import Reply, ToolCallSpec

    call = demo_tool_call(body)
    if call is not None:
        return Reply(text="", tool_calls=[ToolCallSpec(*call)], chunk_delay=chunk_delay)
    text = emulator_reply(last_user_text(body), tool=last_tool_result(body))
    return Reply(text=text, chunk_delay=chunk_delay)


def last_user_text(body: Any) -> str:
    """The last user message of a Chat Completions request body ("" when there is none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def last_tool_result(body: Any) -> str | None:
    """The content of the request's last message when it is a tool result, else None."""
    messages = body.get("messages") if isinstance(body, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if isinstance(last, dict) and last.get("role") == "tool":
        return str(last.get("content"))
    return None


def demo_tool_call(body: Any) -> tuple[str, dict[str, Any]] | None:
    """The demo tool call the emulator makes for a request offering the demo tools (None: answer)."""
    offered = {t.get("function", {}).get("name") for t in (body.get("tools") or []) if isinstance(t, dict)}
    if last_tool_result(body) is not None or not offered:
        return None
    prompt = last_user_text(body)
    expression = arithmetic_in(prompt)
    if expression is not None and "calculator" in offered:
        return ("calculator", {"expression": expression})
    if "clock" in offered and any(word in prompt.lower() for word in ("time", "clock", "date")):
        return ("clock", {})
    return None


def arithmetic_in(text: str) -> str | None:
    """The first arithmetic expression in ``text`` (digits with at least one operator), or None."""
    match = re.search(r"[-(]*\d[\d.\s()]*(?:[-+*/%]+[\s(]*[\d.]+[\d.\s()]*)+", text)
    return match.group(0).strip() if match else None


def emulator_reply(
    prompt: str,
    origin: str = "rx_allm's provider emulator, streamed token by token over real HTTP in the OpenAI "
    "Chat Completions format",
    tool: str | None = None,
    hint: bool = True,
) -> str:
    """What the emulator (or the Fake, with its own ``origin`` and no key ``hint``) answers in the demo."""
    if tool is not None:
        return f"The tool answered {tool}. (This is {origin}; set an API key to talk to a real model.)"
    answer = f"You asked: “{prompt}”. This answer comes from {origin}."
    if hint:
        answer += " Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY to talk to a real model."
    return answer


def _fake_engine(prompt: str) -> allm.Engine:
    origin = "the Fake adapter, token by token with no network at all"
    words = emulator_reply(prompt, origin, hint=False).split(" ")
    script: list[tuple[Any, ...]] = []
    for i, word in enumerate(words):
        script += [("delay", 0.03), ("text", word if i == 0 else " " + word)]
    script += [
        ("usage", {"input_tokens": len(prompt.split()), "output_tokens": len(words)}),
        ("finish", "stop"),
    ]
    return allm.Engine(adapter="fake", adapter_opts={"script": script})


def _fake_tools_engine(prompt: str) -> allm.Engine:
    from rx_allm.orchestration.demo_tools import demo_scripts

    # Two scripts per reply (the tool call, then the answer), for up to 50 replies of a REPL.
    return allm.Engine(
        adapter="fake", adapter_opts={"scripts": demo_scripts(arithmetic_in(prompt) or "6 * 7") * 50}
    )


# -- chat ------------------------------------------------------------------------------
def _chat(args: argparse.Namespace) -> int:
    if args.prompt == "-" or (not args.prompt and not args.interactive and not sys.stdin.isatty()):
        args.prompt = sys.stdin.read().strip()
    if not args.prompt and not args.interactive:
        print(
            f"{ERROR_PREFIX} a prompt is needed (an argument, '-' for stdin, or --interactive)",
            file=sys.stderr,
        )
        return 2
    options = {
        k: v
        for k, v in (
            ("max_tokens", args.max_tokens),
            ("temperature", args.temperature),
            ("stream_timeout", args.timeout),
        )
        if v is not None
    }
    try:
        with target_for(args) as target:
            return _chat_with(args, target, options)
    except Refused as refused:
        print(f"{ERROR_PREFIX} {refused}", file=sys.stderr)
        return 2


def _chat_with(args: argparse.Namespace, target: Target, options: dict[str, Any]) -> int:
    """One reply (or a conversation) with the call ``options`` (max_tokens, temperature, stream_timeout)."""
    if target.notice:
        print(target.notice, file=sys.stderr)
    if args.interactive or args.tools:
        return _conversation(args, target.engine, options)
    messages = ([allm.system(args.system)] if args.system else []) + [allm.user(args.prompt)]
    try:
        events = allm.stream_generate(target.engine, allm.request(messages), **options)
    except RxAllmError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    return run_view(events, _view(args))


def _view(args: argparse.Namespace) -> View:
    return (
        JsonView(sys.stdout) if args.json else EventsView(sys.stdout) if args.events else TextView(sys.stdout)
    )


def _conversation(args: argparse.Namespace, engine: allm.Engine, fields: dict[str, Any]) -> int:
    """One reply with tools, or a REPL (``--interactive``) keeping the thread in a Session."""
    from rx_allm.orchestration.demo_tools import DEMO_TOOLS

    tools = DEMO_TOOLS if args.tools == "demo" else []
    session = allm.Session(thread=allm.Thread(messages=[allm.system(args.system)] if args.system else []))
    prompt: str | None = args.prompt
    code = 0
    while True:
        if prompt is None:
            try:
                prompt = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                return code
        if prompt.strip() in ("/exit", "/quit"):
            return code
        if prompt.strip():
            try:
                events = session.stream_reply(engine, prompt, tools=tools, **fields)
            except RxAllmError as exc:
                print(error_line(exc), file=sys.stderr)
                return 2
            code = run_view(events, _view(args))
        if not args.interactive:
            return code
        prompt = None


def run_view(events: Any, view: View) -> int:
    """Subscribe ``view`` to ``events`` and wait; Ctrl-C disposes the subscription (exit 130)."""
    finished = threading.Event()
    failure: list[Exception] = []
    closed_pipe: list[bool] = []

    def on_error(error: Exception) -> None:
        failure.append(error)
        finished.set()

    def show(event: allm.Event) -> None:
        try:
            view.show(event)
        except BrokenPipeError:  # e.g. `rx-allm chat --json ... | head`: stop reading, quietly
            closed_pipe.append(True)
            finished.set()

    view.waiting()
    subscription = events.subscribe(on_next=show, on_error=on_error, on_completed=finished.set)
    try:
        block_until(finished, subscription)
    except KeyboardInterrupt:  # the subscription is disposed
        view.interrupted()
        return 130
    if closed_pipe:
        subscription.dispose()
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (nothing more can be written to the pipe)
        return 0
    view.done(failure[0] if failure else None)
    return 1 if failure else 0


def error_line(error: Exception) -> str:
    """One readable line for an error: its reason, where it came from, its message, when to retry."""
    if not isinstance(error, RxAllmError):
        return f"{ERROR_PREFIX} {type(error).__name__}: {error}"
    status = getattr(error, "status", None)
    where = ", ".join(str(part) for part in (error.provider, f"HTTP {status}" if status else None) if part)
    kind = f"{type(error).__name__}{', ' + where if where else ''}"
    line = f"{ERROR_PREFIX} {error.reason} ({kind}): {error.message}"
    retry_after = getattr(error, "retry_after_ms", None)
    if retry_after is not None:
        line += f"; retry after {retry_after / 1000:g}s"
    request_id = getattr(error, "request_id", None)
    if request_id:
        line += f"; request id {request_id}"
    return " ".join(line.split())  # one line, whatever the provider's message holds


class View:
    """How events are shown."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def waiting(self) -> None:
        """Before the first event."""

    def show(self, event: allm.Event) -> None:
        """One event."""

    def done(self, error: Exception | None) -> None:
        """After the terminal notification."""
        if error is not None:
            print(error_line(error), file=sys.stderr)

    def interrupted(self) -> None:
        """After Ctrl-C."""
        print("\ncancelled", file=sys.stderr)


class TextView(View):
    """The reply's text as it arrives, a spinner before the first token, then finish and usage."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self.spinner: Any = None
        self.completed: allm.MessageCompleted | None = None
        self.usage: allm.Usage | None = None
        self.wrote = False  # text reached stdout (it then ends with a newline)
        self._arguments: dict[str, Any] = {}

    def waiting(self) -> None:
        try:
            from rich.console import Console
        except ImportError:
            return
        console = Console(stderr=True)
        if console.is_terminal:
            self.spinner = console.status("waiting for the first token…")
            self.spinner.start()

    def _stop_spinner(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None

    def show(self, event: allm.Event) -> None:
        if isinstance(event, allm.TextDelta):
            self._stop_spinner()
            self.out.write(event.delta)
            self.out.flush()
            self.wrote = True
        elif isinstance(event, allm.ToolExecutionCompleted):
            self._stop_spinner()
            arguments = ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in self._arguments.items()
            )
            shown = json.dumps(event.result, ensure_ascii=False)
            self.out.write(
                f"\n[tool {event.name}({arguments}) -> {shown}{' (error)' if event.is_error else ''}]\n"
            )
            self.out.flush()
        elif isinstance(event, allm.ToolExecutionStarted):
            self._arguments = event.arguments
        elif isinstance(event, allm.RawChunk) and isinstance(event.data, allm.Usage):
            self.usage = event.data
        elif isinstance(event, allm.MessageCompleted):
            self.completed = event

    def done(self, error: Exception | None) -> None:
        self._stop_spinner()
        if self.wrote or error is None:
            self.out.write("\n")
            self.out.flush()
        if self.completed is not None:
            print(summary_line(self.completed.finish_reason, self.usage), file=sys.stderr)
        super().done(error)

    def interrupted(self) -> None:
        self._stop_spinner()
        super().interrupted()


def summary_line(finish: str | None, usage: allm.Usage | None) -> str:
    """``finish: stop · usage: 12 in / 8 out / 20 total``."""
    parts = [f"finish: {finish}"]
    if usage is not None and (usage.input_tokens is not None or usage.output_tokens is not None):
        total = usage.total_tokens
        if total is None and usage.input_tokens is not None and usage.output_tokens is not None:
            total = usage.input_tokens + usage.output_tokens
        parts.append(f"usage: {usage.input_tokens} in / {usage.output_tokens} out / {total} total")
    return " · ".join(parts)


class EventsView(View):
    """Every event on its own line."""

    def show(self, event: allm.Event) -> None:
        fields = event.model_dump(mode="json", exclude={"type"})
        shown = " ".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items() if v not in (None, {}, [])
        )
        print(f"{event.type:<20} {shown}", file=self.out, flush=True)


class JsonView(View):
    """Events as JSON lines; a failure is a last line ``{"type": "error", "error": {...}}``."""

    def show(self, event: allm.Event) -> None:
        print(event.model_dump_json(), file=self.out, flush=True)

    def done(self, error: Exception | None) -> None:
        if error is not None:
            body = error.to_dict() if isinstance(error, RxAllmError) else {"message": str(error)}
            line = json.dumps({"type": "error", "error": body}, ensure_ascii=False, separators=(",", ":"))
            print(line, file=self.out, flush=True)
        super().done(error)


# -- serve -----------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1 or (args.workers > 1 and not args.redis):
        print(
            f"{ERROR_PREFIX} --workers N (N > 1) needs --redis URL: workers share replies through Redis",
            file=sys.stderr,
        )
        return 2
    if args.workers == 1:
        return _serve_worker(args)
    from rx_allm.ui.serving import run_processes

    return run_processes(_serve_worker, [(args,)] * args.workers)


def _serve_worker(args: argparse.Namespace) -> int:
    """One process serving the chat app (its own provider target; replies shared with ``--redis``)."""
    from rx_allm.orchestration.demo_tools import DEMO_TOOLS
    from rx_allm.ui.server import serve

    try:
        with target_for(args) as target:
            if target.notice:
                print(target.notice, file=sys.stderr)
            return serve(
                target.engine,
                host=args.host,
                port=args.port,
                tools=DEMO_TOOLS,
                redis=args.redis,
                reuse_port=args.workers > 1,
            )
    except Refused as refused:
        print(f"{ERROR_PREFIX} {refused}", file=sys.stderr)
        return 2
    except OSError as exc:  # the address is taken, or not this machine's
        print(
            f"{ERROR_PREFIX} cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "EMULATOR_KEY",
    "EventsView",
    "JsonView",
    "PROVIDERS",
    "Target",
    "TextView",
    "View",
    "emulator_reply",
    "error_line",
    "last_user_text",
    "main",
    "run_view",
    "summary_line",
    "target_for",
]
