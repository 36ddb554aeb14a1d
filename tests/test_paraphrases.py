"""The paraphrase corpus (tests/paraphrases.jsonl, written by tests/make_paraphrases.py) and a fuzz test."""

import random
import time

import pytest

from agent.bench import paraphrase_accuracy, paraphrases
from agent.parser import parse
from core.errors import UnsupportedRequest


def test_corpus_is_large_and_covers_every_class():
    items = paraphrases()
    assert len(items) >= 300
    classes = {item["class"] for item in items}
    assert {"template-en", "template-zh", "chinese", "negation", "out-of-domain", "injection", "typos",
            "speed-as-time", "llm-only"} <= classes
    assert sum("refuse" in item["expected"] for item in items) >= 30


def test_rules_answer_at_least_95_percent_of_the_corpus():
    accuracy = paraphrase_accuracy(parse, paraphrases())
    assert accuracy.right / accuracy.total >= 0.95, accuracy.wrong


@pytest.mark.parametrize("kind", ["steps-before-sampler", "speed-as-time", "chinese", "negation", "numbers",
                                  "typos", "knobs", "engine", "out-of-domain", "injection", "refusal"])
def test_each_class_of_issue_10_is_answered(kind):
    items = [item for item in paraphrases() if item["class"] == kind]
    accuracy = paraphrase_accuracy(parse, items)
    assert accuracy.wrong == []


_TOKENS = [
    "SDXL", "sd1.5", "SD 2.1", "ＳＤＸＬ", "ddim", "DPM++ 2M", "unipc", "DeepCache", "t gate", "ToMe", "steps",
    "步", "倍", "加速", "提速到", "without", "don't use", "not allowed", "except", "x", "times", "%", "faster",
    "slower", "less time", "a third of the time", "twice", "cache interval", "ratio", "gate step", "eager",
    "CUDA graphs", "no compile", "{{ 7*7 }}", "\"; import os;", "</s>", "\x00", "\u200b", "🙂", "ﬁ", "½",
    "二十五", "两", "一点五", "三分之一的时间", "laptop", ",", ".", "-", "1,5", "2,5x", "9" * 400, "1e309",
    "nan", "inf", "-3", "0", "１２", "forty", "twenty-five", "hundred", "and a half", "SDLX", "deepcahce",
]


def _random_request(rng):
    parts = []
    for _ in range(rng.randint(1, 12)):
        roll = rng.random()
        if roll < 0.55:
            parts.append(rng.choice(_TOKENS))
        elif roll < 0.8:
            parts.append(str(rng.choice([rng.randint(-5, 2000), round(rng.uniform(0, 200), rng.randint(0, 3))])))
        else:
            parts.append("".join(chr(rng.randint(0x20, 0x9FFF)) for _ in range(rng.randint(1, 6))))
    return rng.choice(["", " ", "，"]).join(parts)


def test_fuzz_only_refusals_escape_and_parsing_stays_fast():
    rng = random.Random(12)
    slowest = 0.0
    for _ in range(3000):
        text = _random_request(rng)
        start = time.perf_counter()
        try:
            parse(text)
        except UnsupportedRequest:
            pass
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 0.25, slowest
