"""The rule-based parser: free text (English or Chinese) to a `Task`, offline.

Each field has one extractor. An extractor either finds the field, finds nothing (the field stays
unknown), or finds something unsupported and raises `UnsupportedRequest` with a message naming what is
supported. Nothing but validated field values leaves this module, so no text of the request can
reach a generated script.
"""

from __future__ import annotations

import re

from core.errors import UnsupportedRequest
from core.task import ACCELERATORS, MODELS, SAMPLERS, Task

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "a hundred": 100, "one hundred": 100,
}
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

_MODEL_PATTERNS = {
    "SDXL": r"sd[\s_-]?xl|stable[\s_-]?diffusion[\s_-]?xl|\bxl\b",
    "SD2.1": r"\bsd[\s_-]?v?2(?:[._-]1|\.x)?(?![\d.])|\bsd21\b|stable[\s_-]?diffusion[\s_-]?v?2(?:[.-]1)?(?![\d.])",
    "SD1.5": r"\bsd[\s_-]?v?1[._-]?5\b|\bsd15\b|stable[\s_-]?diffusion[\s_-]?v?1[.-]5",
}
_UNSUPPORTED_MODELS = (
    r"\bsd[\s_-]?3(?:\.5)?\b|stable[\s_-]?diffusion[\s_-]?3|\bflux|\bkandinsky|\bpixart|\bplayground"
    r"|stable[\s_-]?cascade|\bsd[\s_-]?1[._-]?4\b|\bmidjourney|\bdall[\s_-]?e|\bimagen\b|\bhunyuan"
    r"|\bsana\b|\bauraflow|\blcm\b|\bturbo\b"
)

_SAMPLER_PATTERNS = {
    "DDIM": r"\bddim",
    "DPM-Solver++": r"dpm[\s_-]?(?:solver)?[\s_-]?(?:\+\+|pp\b|plus[\s_-]?plus)|dpmsolver|dpm[\s_-]solver"
    r"|dpmsolvermultistep",
    "UniPC": r"uni[\s_-]?pc",
}
_UNSUPPORTED_SAMPLERS = (
    r"\beuler|\bheun\b|\blms\b|\bpndm\b|\bplms\b|\bddpm\b|\bdpm2\b|\bkdpm|\bdeis\b|\blcm[\s_-]?scheduler"
    r"|\btcd\b|\bsa[\s_-]?solver"
)

_ACCELERATOR_PATTERNS = {
    "DeepCache": r"deep[\s_-]?cache",
    "T-Gate": r"\bt[\s_-]?gate|tgate",
    "ToMe": r"\btome(?:sd)?\b|token[\s_-]?merg(?:ing|e)|合并token|token合并",
}
_ALL_ACCELERATORS = (
    r"\ball\s+(?:three|3)(?:\s+(?:methods|accelerators|accelerations|techniques))?\b"
    r"|\ball\s+(?:the\s+)?(?:methods|accelerators|acceleration methods)\b|三种"
)
_NO_ACCELERATOR = (
    r"\bno\s+accelerat\w*|\bwithout\s+(?:any\s+)?accelerat\w*|\bunaccelerated\b|\bplain pipeline\b"
)
_NEGATION = r"(?:without|no|not|except|drop|remove|minus|excluding|但不要|不用|不要|去掉)\s*(?:the\s+|using\s+|use\s+)?$"

_STEP_UNIT = r"(?:inference\s+|sampling\s+|denoising\s+|diffusion\s+)?(?:steps?\b|it\b|its\b|iterations?\b|步)"


def parse(text: str) -> Task:
    """Parse a request into a Task; raise UnsupportedRequest for what diffaccel must refuse."""
    if not text or not text.strip():
        raise UnsupportedRequest(
            "empty request: describe the pipeline, e.g. 'make SDXL 2x faster with UniPC'"
        )
    normalized = _normalize(text)
    task = Task(
        model=_model(normalized),
        sampler=_sampler(normalized),
        steps=_steps(normalized),
        accelerators=_accelerators(normalized),
        speedup=_speedup(normalized),
    )
    if all(value is None for value in task.model_dump().values()):
        raise UnsupportedRequest(
            "this does not look like a Stable Diffusion acceleration request: name a model "
            f"({', '.join(MODELS)}), a sampler ({', '.join(SAMPLERS)}), a step count, accelerators "
            f"({', '.join(ACCELERATORS)}) or a speedup, e.g. 'make SDXL 2x faster with UniPC'"
        )
    return task


def _normalize(text: str) -> str:
    text = text.lower().replace("×", "x").replace("，", ",").replace("。", ".").replace("：", ":")
    text = text.replace("＋", "+").replace("％", "%")
    return re.sub(r"\s+", " ", text)


def _find(patterns: dict[str, str], text: str) -> list[str]:
    return [name for name, pattern in patterns.items() if re.search(pattern, text)]


def _model(text: str) -> str | None:
    found = _find(_MODEL_PATTERNS, text)
    if not found:
        if re.search(_UNSUPPORTED_MODELS, text):
            match = re.search(_UNSUPPORTED_MODELS, text)
            raise UnsupportedRequest(
                f"model {match.group(0).strip()!r} is not supported; supported models: "
                f"{', '.join(MODELS)}"
            )
        return None
    if len(found) > 1:
        raise UnsupportedRequest(
            f"the request names several models ({', '.join(found)}): name exactly one of "
            f"{', '.join(MODELS)}"
        )
    return found[0]


def _sampler(text: str) -> str | None:
    found = _find(_SAMPLER_PATTERNS, text)
    if not found:
        match = re.search(_UNSUPPORTED_SAMPLERS, text)
        if match:
            raise UnsupportedRequest(
                f"sampler {match.group(0).strip()!r} is not supported; supported samplers: "
                f"{', '.join(SAMPLERS)}"
            )
        return None
    if len(found) > 1:
        raise UnsupportedRequest(
            f"the request names several samplers ({', '.join(found)}): name exactly one of "
            f"{', '.join(SAMPLERS)}"
        )
    return found[0]


def _number(token: str) -> float | None:
    token = token.strip()
    try:
        return float(token)
    except ValueError:
        token = token.replace("-", " ")
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    words = token.split()
    if len(words) == 2 and words[0] in _NUMBER_WORDS and words[1] in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[words[0]] + _NUMBER_WORDS[words[1]])
    if token and all(ch in _CHINESE_DIGITS or ch == "十" for ch in token):
        return float(_chinese_number(token))
    return None


def _chinese_number(token: str) -> int:
    if "十" not in token:
        return _CHINESE_DIGITS[token]
    tens, _, units = token.partition("十")
    return (_CHINESE_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CHINESE_DIGITS[units] if units else 0)


_WORD = "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len, reverse=True))
_NUM = rf"-?\d+(?:\.\d+)?|(?:{_WORD})(?:[\s-](?:{_WORD}))?|[一二两三四五六七八九十]+"


def _steps(text: str) -> int | None:
    patterns = (
        rf"(?<![\w.-])(?P<n>{_NUM})\s*{_STEP_UNIT}",
        rf"(?:num_inference_steps|steps|step count|步数)\s*(?:=|:|\bof\b|\bis\b|\bto\b)\s*(?P<n>{_NUM})",
        rf"(?:采样|推理)\s*(?P<n>{_NUM})\s*(?:步|次)",
    )
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            value = _number(match.group("n"))
            if value is None:
                continue
            if value <= 0 or value != int(value):
                raise UnsupportedRequest(
                    f"steps must be a positive whole number, got {match.group('n').strip()!r}"
                )
            if value > 1000:
                raise UnsupportedRequest(f"{int(value)} steps is more than the 1000 allowed")
            return int(value)
    return None


def _accelerators(text: str) -> list[str] | None:
    if re.search(_NO_ACCELERATOR, text):
        return []
    named, _ = accelerator_mentions(text)
    return [name for name in ACCELERATORS if name in named] or None


def _speedup(text: str) -> float | None:
    value = _speedup_value(text)
    if value is None:
        return None
    if value <= 1.0:
        raise UnsupportedRequest(
            f"a speedup must be above 1.0 (got {value:g}x): ask for e.g. '1.5x faster'"
        )
    if value > 100:
        raise UnsupportedRequest(f"a {value:g}x speedup is beyond what training-free acceleration reaches")
    return round(value, 4)


def _speedup_value(text: str) -> float | None:
    text = re.sub(r"\d+\s*x\s*\d+", " ", text)  # resolutions like 1024x1024 are not speedups
    for pattern in (
        rf"(?:speed[\s_-]?up|speedup|acceleration|factor)\s*(?:=|:|of|to|by|at)?\s*(?:a\s+factor\s+of\s+)?(?P<n>{_NUM})\s*(?:x\b|times\b)?",
        rf"(?<![\w.])(?P<n>{_NUM})\s*(?:x\b|times\b|倍|fold\b)",
        rf"(?:加速|提速|快)\s*(?P<n>{_NUM})\s*倍?",
        rf"by\s+a\s+factor\s+of\s+(?P<n>{_NUM})",
    ):
        match = re.search(pattern, text)
        if match and _number(match.group("n")) is not None:
            return _number(match.group("n"))
    if re.search(r"\b(?:halve|half)\b.{0,20}\b(?:latency|time|runtime)|twice as fast|double the speed|\btwice\b", text):
        return 2.0
    if re.search(r"\b(?:triple the speed|three times as fast|thrice)\b", text):
        return 3.0
    percent = re.search(r"(?P<n>\d+(?:\.\d+)?)\s*%", text)
    if percent:
        fraction = float(percent.group("n")) / 100
        before = text[: percent.start()]
        if re.search(r"(?:reduce|cut|lower|decrease|shorten|less)\w*\s.{0,30}$", before) or re.search(
            r"(?:latency|time|runtime)\s+(?:by\s+)?$", before
        ):
            return 1 / (1 - fraction) if fraction < 1 else None
        return 1 + fraction
    return None


def mentioned_numbers(text: str) -> set[float]:
    """Every number the request states or clearly implies (for grounding an LLM's answer)."""
    normalized = _normalize(text)
    numbers = set()
    for match in re.finditer(_NUM, normalized):
        value = _number(match.group(0))
        if value is not None:
            numbers.add(value)
    for match in re.finditer(r"(\d+(?:\.\d+)?)\s*%", normalized):
        fraction = float(match.group(1)) / 100
        numbers.add(round(1 + fraction, 4))
        if fraction < 1:
            numbers.add(round(1 / (1 - fraction), 4))
    implied = _speedup_value(normalized)
    if implied is not None:
        numbers.add(implied)
    return numbers


def accelerator_mentions(text: str) -> tuple[set[str], set[str]]:
    """(named, negated): accelerators a follow-up names, and those it names to drop."""
    normalized = _normalize(text)
    named, negated = set(), set()
    if re.search(_ALL_ACCELERATORS, normalized):
        named |= set(ACCELERATORS)
    for name, pattern in _ACCELERATOR_PATTERNS.items():
        for match in re.finditer(pattern, normalized):
            before = normalized[max(0, match.start() - 24) : match.start()]
            (negated if re.search(_NEGATION, before) else named).add(name)
    return named - negated, negated
