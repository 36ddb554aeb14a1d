"""The rule-based parser: free text (English or Chinese) to a `Task`, offline.

Two stages. `normalize` rewrites the text once into one spelling: NFKC (full-width forms), lower
case, spaces between CJK and Latin letters or digits (a `\\b` never matches after a CJK character),
number words in English and Chinese as digits, decimal commas as points. Then one grammar reads the
fields from that text, each extractor blanking what it consumed so that the number in "SD1.5", a
resolution or "cache interval 3" is never read again as steps or a speedup.

An extractor either finds its field, finds nothing (the field stays unknown), or finds something
unsupported or contradictory and raises `UnsupportedRequest` with a message that says what to write
instead. Nothing but validated field values leaves this module, so no text of the request can reach
a generated script.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from core.errors import UnsupportedRequest
from core.task import ACCELERATORS, MODELS, SAMPLERS, Task

# ------------------------------------------------------------------------------------------------
# Normalisation
# ------------------------------------------------------------------------------------------------

_PUNCTUATION = str.maketrans({"×": "x", "。": ".", "、": ",", "’": "'", "‘": "'", "“": '"', "”": '"',
                              "「": '"', "」": '"', "～": "~", "〜": "~"})
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百]+(?:点[零〇一二三四五六七八九]+)?")

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
          "nineteen"]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_EN_WORDS = {**{word: value for value, word in enumerate(_UNITS)}, **_TENS}
_EN_NUMBER = re.compile(
    rf"\b(?:(?P<tens>{'|'.join(_TENS)})(?:[\s-](?P<ones>{'|'.join(_UNITS[1:10])}))?|(?P<units>{'|'.join(reversed(_UNITS))}))"
    r"\b(?P<half>\s+and\s+a\s+half\b)?"
)


def normalize(text: str) -> str:
    """The one spelling every extractor reads (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCTUATION)
    text = _CN_NUMBER.sub(lambda m: _chinese_number(m.group(0)), text)
    text = re.sub(rf"(?<=[{_CJK}])(?=[a-z0-9])|(?<=[a-z0-9%+])(?=[{_CJK}])", " ", text)
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,000 steps
    text = re.sub(r"(?<![\d.,])(\d),(\d{1,2})(?![\d,])", r"\1.\2", text)  # 2,5x
    text = re.sub(r"\b(?:a|one)\s+hundred\b|\bhundred\b", "100", text)
    text = _EN_NUMBER.sub(_english_number, text)
    text = re.sub(r"\b(\d)\s+hundred\b", lambda m: str(int(m.group(1)) * 100), text)
    return re.sub(r"\s+", " ", text).strip()


def _english_number(match: re.Match) -> str:
    value = sum(_EN_WORDS.get(match.group(g) or "", 0) for g in ("tens", "ones", "units"))
    if match.group("half"):
        return f"{value}.5"
    return str(value)


def _chinese_number(token: str) -> str:
    whole, _, decimals = token.partition("点")
    if not whole:
        return token
    if not any(ch in "十百" for ch in whole):
        value = "".join(str(_CN_DIGITS[ch]) for ch in whole)
    else:
        total, digit = 0, None
        for ch in whole:
            if ch in _CN_DIGITS:
                digit = _CN_DIGITS[ch]
            else:
                total += (1 if digit is None else digit) * (10 if ch == "十" else 100)
                digit = None
        value = str(total + (digit or 0))
    if decimals:
        value += "." + "".join(str(_CN_DIGITS[ch]) for ch in decimals)
    return value


# ------------------------------------------------------------------------------------------------
# The grammar's vocabulary
# ------------------------------------------------------------------------------------------------

_NUM = r"(?:(?<![^\s(:=])-)?\d+(?:\.\d+)?"

_MODEL_PATTERNS = {
    "SDXL": r"(?:stabilityai/)?stable[\s_-]?diffusion[\s_-]?xl(?:[\s_-]?base)?(?:[\s_-]?1\.0)?"
    r"|\bsd[\s_-]?xl\b|稳定扩散\s*xl|\bxl\b",
    "SD2.1": r"(?:stabilityai/)?stable[\s_-]?diffusion[\s_-]?v?2(?:[._-]1)?(?:[\s_-]?base)?(?![\d.]|\s?(?:x|times|倍)\b)"
    r"|\bsd[\s_-]?v?2[._-]?1\b|\bsd[\s_-]?v?2(?:\.x)?(?![\d.]|\s?(?:x|times|倍)\b)|稳定扩散\s*2(?:\.1)?\b",
    "SD1.5": r"(?:runwayml/)?stable[\s_-]?diffusion[\s_-]?v?1[._-]5\b|\bsd[\s_-]?v?1[._\s-]?5\b"
    r"|稳定扩散\s*1\.5\b",
}
_UNSUPPORTED_MODELS = (
    r"\bsd[\s_-]?3(?:\.5)?\b|stable[\s_-]?diffusion[\s_-]?3|\bflux|\bkandinsky|\bpixart|\bplayground"
    r"|stable[\s_-]?cascade|\bsd[\s_-]?1[._-]?4\b|\bmidjourney|\bdall[\s_-]?e|\bimagen\b|\bhunyuan"
    r"|\bsana\b|\bauraflow|\blcm\b|\bturbo\b|\brefiner\b|\binpainting\b"
)
# Checkpoints built on a supported model but not it: its measured figures do not carry over.
# Matched only joined to the model's name: "SDXL, no refiner" or "lightning-fast SDXL" is the base model.
_MODEL_VARIANTS = (
    r"(?:\bsd[\s_-]?xl|stable[\s_-]?diffusion[\s_-]?xl)[\s_-]?(?:turbo|refiner|lightning(?![\s_-]*fast))\b"
    r"|(?:\bsd[\s_-]?v?(?:1[._-]?5|2(?:[._-]?1)?|xl)|stable[\s_-]?diffusion(?:[\s_-]?v?(?:1[._-]5|2(?:[._-]1)?|xl))?)"
    r"[\s_-]?inpaint\w*"
    r"|\bhyper[\s_-]?sd\w*|\blcm[\s_-]?(?:lora|sd)\w*|(?:\bsd[\s_-]?xl|\bsd[\s_-]?1[._-]?5)[\s_-]?lcm\b"
)
_SAMPLER_PATTERNS = {
    "DDIM": r"\bddim\w*",
    "DPM-Solver++": r"\bdpm[\s_-]?(?:solver)?[\s_-]?(?:\+\+|pp\b|plus[\s_-]?plus\b)(?:[\s_-]?(?:2m|multistep)\b)?"
    r"(?:[\s_-]?karras\b)?|\bdpm[\s_-]?solver(?:[\s_-]?multistep(?:[\s_-]?scheduler)?)?(?:\+\+)?"
    r"|\bdpmsolver\w*(?:\+\+)?",
    "UniPC": r"\buni[\s_-]?pc\w*",
}
_UNSUPPORTED_SAMPLERS = (
    r"\bdpm[\s_-]?(?:\+\+|pp)[\s_-]?(?:2m[\s_-]?)?sde\b|\bdpm[\s_-]?(?:\+\+|pp)[\s_-]?2s\b|\beuler\w*"
    r"|\bheun\b|\blms\b|\bpndm\b|\bplms\b|\bddpm\b|\bdpm2\b|\bkdpm|\bdeis\b|\blcm[\s_-]?scheduler"
    r"|\btcd\b|\bsa[\s_-]?solver"
)
_ACCELERATOR_PATTERNS = {
    "DeepCache": r"\bdeep[\s_-]?cache(?:sd[\s_-]?helper)?(?![a-z])",
    "T-Gate": r"\bt[\s_-]?gate(?:sd\w*loader)?(?![a-z])",
    "ToMe": r"\btome(?:sd)?\b|\btoken[\s_-]?merg\w*|\bmerging\s+tokens\b|合并\s*token|token\s*合并|令牌合并|词元合并",
}
_ALL_ACCELERATORS = (
    r"\ball\s+(?:of\s+)?(?:the\s+)?3\b(?:\s+(?:methods|accelerators|accelerations|techniques|of them))?"
    r"|\ball\s+(?:of\s+)?(?:the\s+)?(?:methods|accelerators|acceleration methods|techniques)\b"
    r"|\bevery\s+(?:accelerator|method)\b|\beverything\b|全部|所有\s*(?:的)?\s*(?:加速)?\s*(?:方法)?|3\s*种"
)
_NO_ACCELERATOR = (
    r"\bno\s+accelerat\w*|\bwithout\s+(?:any\s+)?accelerat\w*|\bunaccelerated\b|\bplain\s+pipeline\b"
    r"|不加速|不使用加速|无加速"
)
# A follow-up's edit verbs ('drop ToMe') remove an accelerator; these words forbid one.
_FORBID = (
    r"without|w/o|no|not|never|except(?:\s+for)?|excluding|exclude|but\s+not|nor|other\s+than|avoid|skip"
    r"|disable|(?:don'?t|do\s+not|never)\s+(?:use|apply|add|want|need)|不要|不用|别用|别|不使用|禁用|除了|除去|不加|不需要"
)
_REMOVE = r"drop|remove|minus|去掉|删掉|去除"
_OBJECT = r"\s*(?:the\s+|any\s+|using\s+|use\s+|with\s+|用\s*|使用\s*)?$"
_CONNECTOR = r"^\s*(?:,|and|or|nor|&|/|\+|和|与|及|或|、)?\s*(?:and|or|nor)?\s*$"
_FORBID_AFTER = (
    r"^\s*(?:(?:is|are)\s+)?(?:not\s+(?:allowed|permitted|wanted|needed|ok|okay|an\s+option)|forbidden"
    r"|banned|disallowed|prohibited|off\b|disabled|excluded|不要|不用|不能用|禁用|不允许|除外)"
)

_EAGER = (
    r"\beager\w*|\buncompiled\b|(?:\bno|\bwithout|\bnot|don'?t|do\s+not|\bdisable|\bskip|\bavoid)\s+"
    r"(?:use\s+|using\s+|any\s+)?(?:torch\.?\s?compile\w*|compil\w*|cuda[\s-]?graphs?|graphs?)"
    r"|不\s*(?:要|用|使用)?\s*编译|禁用\s*编译|不\s*(?:要|用|使用)\s*cuda\s*graphs?"
)
_GRAPH = (
    r"cuda[\s-]?graphs?|torch\.?\s?compile\w*|\bcompiled\b|\bcompilation\b|\bgraph\s+mode\b"
    r"|reduce-overhead|\bcompile\s+(?:it|the\s+unet|the\s+model)\b|编译|图模式"
)
_KNOBS = {
    "cache_interval": r"(?:cache[\s_-]?interval|\binterval|缓存间隔)",
    "cache_branch_id": r"(?:cache[\s_-]?branch(?:[\s_-]?id)?|\bbranch[\s_-]?id|\bbranch)",
    "gate_step": r"(?:\bgate[\s_-]?step|(?<=#)\s+(?:at|after)\s+step|门控步数?)",
    "ratio": r"(?:(?:merge|merging)?\s*ratio|合并比例|比例)",
}

_STEP_UNIT = (
    r"(?:(?:inference|sampling|denoising|diffusion|solver|sampler|scheduler)\s+)*"
    r"(?:steps?\b|iterations?\b|its?\b|步(?!数)|个?\s*步骤|次\s*迭代|次\s*采样)"
)
_STEP_WORD = (
    r"(?:num_inference_steps|number\s+of\s+(?:inference\s+)?steps|(?:inference\s+|sampling\s+)?steps?"
    r"|step\s+count|采样步数|推理步数|步数|迭代次数)"
)
_STEP_LINK = r"\s*(?:=|:|\bis\b|\bof\b|\bto\b|\bat\b|为|是|设为|设置为|设成|改为|改成)?\s*"
_SPEED_UNIT = r"(?:x(?![a-z])|times\b|fold\b|倍)"
_SLOW = r"^\s*(?:slower|longer|more\s+time|as\s+slow|the\s+time|less\s+fast)"
_TIME = r"(?:time|latency|runtime|duration|inference\s+time|generation\s+time|wall[\s-]?clock)"
_FRACTIONS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
              "fourth": 4, "fourths": 4, "fifth": 5, "fifths": 5, "tenth": 10, "tenths": 10}
_SD_NAMED = (
    r"stable[\s_-]?diffusion|\bsd\b|\bdiffusers?\b|\bdiffusion\b|\bu-?net\b|text[\s-]to[\s-]image"
    r"|image\s+generation|稳定扩散|扩散模型|文生图|图像生成"
)
# Words a bare "now 3x" or "make it 2x faster" may carry besides its numbers; any other word in a
# request that names nothing of Stable Diffusion ("make my laptop 3x faster") is outside the domain.
_FILLER = set("""
a about accelerate accelerated acceleration aim also an and approx approximately are around as at
be but by can change could do even faster fast for from generation get go goal i i'd i'm image images
in inference instead is it it's its just keep latency less let let's lets like lower make me more my
need now of ok okay on only our overall please pls quick quicker quickly rather reduce roughly run
running runtime same sampling set should so speed speedup speed-up speeds steps step still target
than thanks the then this time times to too try up us use using want wanna we what with would x you
""".split())
_CJK_FILLER = set("把它这个再现在改成用到为至加速提速快倍吧请让速度提升目标设置设步数采样推理的了要我想需要些点下就即可好"
                  "和与并且然后时间耗时延迟减少降低缩短率左右大约约给将能够以上")


@dataclass
class _Text:
    """The normalised request; extractors blank what they consume so nothing is read twice."""

    text: str
    raw: str
    knobs: dict[str, float] = field(default_factory=dict)

    def take(self, pattern: str, fill: str = " ") -> list[re.Match]:
        matches = list(re.finditer(pattern, self.text))
        for match in matches:
            self.blank(match.start(), match.end(), fill)
        return matches

    def blank(self, start: int, end: int, fill: str = " ") -> None:
        """Spaces let neighbours meet ('20 DDIM steps'); '#' keeps them apart (an accelerator's name)."""
        self.text = self.text[:start] + fill * (end - start) + self.text[end:]


# ------------------------------------------------------------------------------------------------
# The grammar
# ------------------------------------------------------------------------------------------------


def parse(text: str) -> Task:
    """Parse a request into a Task; raise UnsupportedRequest for what diffaccel must refuse."""
    if not text or not text.strip():
        raise UnsupportedRequest(
            "empty request: describe the pipeline, e.g. 'make SDXL 2x faster with UniPC'"
        )
    source = _Text(normalize(text), text)
    source.take(r"\b\d{3,5}\s*[x*]\s*\d{3,5}\b|\b\d{3,5}\s*px\b")  # resolutions are not speedups
    accelerators, excluded = _accelerators(source)
    knobs = _knobs(source)
    engine = _engine(source)
    model = _model(source)
    sampler = _sampler(source)
    steps = _steps(source)
    speedup = _speedup(source)
    task = Task(model=model, sampler=sampler, steps=steps, accelerators=accelerators, speedup=speedup,
                engine=engine, excluded=excluded or None, knobs=knobs or None)
    _check_typos(source, task)
    _check_domain(source, task)
    return task


def _model(source: _Text) -> str | None:
    variant = re.search(_MODEL_VARIANTS, source.text)
    if variant:
        raise UnsupportedRequest(
            f"{variant.group(0).strip()!r} is a different checkpoint from the model it builds on, and diffaccel's "
            f"figures hold only for the base checkpoints: ask for one of {', '.join(MODELS)}")
    found = _found(source, _MODEL_PATTERNS)
    if not found:
        match = re.search(_UNSUPPORTED_MODELS, source.text)
        if match:
            raise UnsupportedRequest(
                f"model {match.group(0).strip()!r} is not supported; supported models: {', '.join(MODELS)}"
            )
        return None
    if len(found) > 1:
        raise UnsupportedRequest(
            f"the request names several models ({', '.join(found)}): name exactly one of {', '.join(MODELS)}"
        )
    return found[0]


def _sampler(source: _Text) -> str | None:
    match = re.search(_UNSUPPORTED_SAMPLERS, source.text)
    found = [] if match and "dpm" in match.group(0) else _found(source, _SAMPLER_PATTERNS)
    if not found:
        if match:
            raise UnsupportedRequest(
                f"sampler {match.group(0).strip()!r} is not supported; supported samplers: {', '.join(SAMPLERS)}"
            )
        return None
    if len(found) > 1:
        raise UnsupportedRequest(
            f"the request names several samplers ({', '.join(found)}): name exactly one of {', '.join(SAMPLERS)}"
        )
    return found[0]


def _found(source: _Text, patterns: dict[str, str]) -> list[str]:
    return [name for name, pattern in patterns.items() if source.take(pattern)]


def _accelerators(source: _Text) -> tuple[list[str] | None, list[str]]:
    none = source.take(_NO_ACCELERATOR, "#")
    named, forbidden, removed, everything = _mentions(source)
    if none:
        return [], sorted(forbidden)
    both = (named & forbidden) - removed
    if both:
        raise UnsupportedRequest(
            f"the request both asks for and forbids {', '.join(sorted(both))}: state it once"
        )
    chosen = (set(ACCELERATORS) if everything else named) - forbidden - removed
    return [name for name in ACCELERATORS if name in chosen] or None, sorted(forbidden)


def _mentions(source: _Text) -> tuple[set[str], set[str], set[str], bool]:
    """(named, forbidden, removed, everything): accelerators and how the request speaks of each."""
    mentions = sorted(
        (match.start(), match.end(), name)
        for name, pattern in _ACCELERATOR_PATTERNS.items()
        for match in re.finditer(pattern, source.text)
    )
    everything = bool(source.take(_ALL_ACCELERATORS, "#"))
    for start, end, _ in mentions:
        source.blank(start, end, "#")
    named, forbidden, removed = set(), set(), set()
    previous_end, previous_kind, chain = 0, None, []
    text = source.text
    for index, (start, end, name) in enumerate(mentions):
        before = text[max(previous_end, start - 30):start]
        connected = index > 0 and re.search(_CONNECTOR, text[previous_end:start])
        if re.search(rf"(?:{_FORBID}){_OBJECT}", before):
            kind = "forbid"
        elif re.search(rf"(?:{_REMOVE}){_OBJECT}", before):
            kind = "remove"
        elif connected and previous_kind:
            kind = previous_kind
        else:
            kind = None
        chain = chain + [name] if connected else [name]
        next_start = mentions[index + 1][0] if index + 1 < len(mentions) else len(text)
        after = text[end:next_start]
        if kind is None and re.search(_FORBID_AFTER, after):
            # "DeepCache and ToMe are not allowed" forbids both; "DeepCache, ToMe is forbidden" one
            for chained in chain if not re.match(r"\s*is\b", after) else [name]:
                named.discard(chained)
                forbidden.add(chained)
            kind = "forbid"
        {"forbid": forbidden, "remove": removed, None: named}[kind].add(name)
        previous_end, previous_kind = end, kind
    return named, forbidden, removed, everything


def accelerator_mentions(text: str) -> tuple[set[str], set[str]]:
    """(named, negated): accelerators a follow-up names, and those it names to drop or forbid."""
    named, forbidden, removed, everything = _mentions(_Text(normalize(text), text))
    negated = forbidden | removed
    if everything:
        named |= set(ACCELERATORS)
    return named - negated, negated


def _engine(source: _Text) -> str | None:
    if source.take(_EAGER):
        return "eager"
    if source.take(_GRAPH):
        return "graph"
    return None


def _knobs(source: _Text) -> dict[str, float]:
    knobs = {}
    for name, words in _KNOBS.items():
        for match in re.finditer(rf"{words}\s*(?:=|:|\bof\b|\bis\b|\bto\b|为|是|设为)?\s*(?P<n>{_NUM})(?![\d.])",
                                 source.text):
            value = _finite(match.group("n"))
            _check_knob(name, value)
            knobs[name] = value
            source.blank(match.start(), match.end())
    return knobs


def _check_knob(name: str, value: float) -> None:
    if name == "ratio":
        if not 0 < value <= 0.75:
            raise UnsupportedRequest(f"a ToMe ratio must be above 0 and at most 0.75, got {value:g}")
        return
    lowest = 0 if name == "cache_branch_id" else 1
    if value != int(value) or not lowest <= value <= 1000:
        raise UnsupportedRequest(f"{name} must be a whole number from {lowest}, got {value:g}")


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value) or abs(value) > 1e9:
        raise UnsupportedRequest(f"the number {token[:12]}{'...' if len(token) > 12 else ''} is too large")
    return value


def _steps(source: _Text) -> int | None:
    matches = []
    for pattern in (
        rf"(?<![\w.])(?P<n>{_NUM})[\s-]*{_STEP_UNIT}",
        rf"{_STEP_WORD}{_STEP_LINK}(?P<n>{_NUM})(?![\d.])(?!\s*(?:{_SPEED_UNIT}|%))",
        rf"(?:采样|推理|迭代|跑|运行)\s*(?P<n>{_NUM})\s*(?:步|次)",
    ):
        matches += source.take(pattern)
    values = {_finite(m.group("n")): m.group("n") for m in matches}
    if not values:
        return None
    if len(values) > 1:
        raise UnsupportedRequest(
            f"the request states several step counts ({' and '.join(values.values())}): state one"
        )
    value, token = next(iter(values.items()))
    if value <= 0 or value != int(value):
        raise UnsupportedRequest(f"steps must be a positive whole number, got {token!r}")
    if value > 1000:
        raise UnsupportedRequest(f"{int(value)} steps is more than the 1000 allowed")
    return int(value)


def _speedup(source: _Text) -> float | None:
    values = speedup_mentions(source)
    if not values:
        return None
    distinct = sorted(set(values.values()))
    if len(distinct) > 1:
        raise UnsupportedRequest(
            "the request states different speedups ("
            + " and ".join(f"{value:g}x" for value in distinct) + "): state one target"
        )
    value = distinct[0]
    if value <= 1.0:
        raise UnsupportedRequest(f"a speedup must be above 1.0 (got {value:g}x): ask for e.g. '1.5x faster'")
    if value > 100:
        raise UnsupportedRequest(
            f"a {value:g}x speedup is beyond the 100x diffaccel accepts (training-free acceleration "
            "reaches a few x): ask for e.g. '3x faster'"
        )
    return round(value, 4)


def speedup_mentions(source: _Text) -> dict[int, float]:
    """Every speedup the text states, by position; raises on a slowdown. Consumes what it reads."""
    found: dict[int, float] = {}
    text = source.text

    def add(match: re.Match, value: float, number_start: int) -> None:
        before = text[max(0, number_start - 16):number_start]
        if re.search(r"(?:instead\s+of|rather\s+than|\bnot|\bfrom|而不是|不是)\s*$", before):
            return  # "3x instead of 2x" states one target
        found[number_start] = value
        source.blank(match.start(), match.end())

    for match in re.finditer(rf"(?<![\w.])(?P<n>{_NUM})\s*-?\s*{_SPEED_UNIT}", text):
        slow_before = re.search(r"慢\s*(?:了)?\s*$", text[:match.start()])
        if re.search(_SLOW, text[match.end():]) or slow_before:
            raise _slowdown(match.group(0))
        value = _finite(match.group("n"))
        if value == 1 and "倍" in match.group(0) and re.search(r"(?:快|提速|加速|提升)\s*(?:了)?\s*$", text[:match.start()]):
            value = 2.0  # 快一倍: one time faster, i.e. twice the speed
        add(match, value, match.start("n"))
    for match in re.finditer(r"(?<![\w.])x\s?(?P<n>\d+(?:\.\d+)?)(?![\w.])", text):
        add(match, _finite(match.group("n")), match.start("n"))
    keyword = (r"(?:(?:speed[\s_-]?up|speedup|acceleration)(?:\s+(?:target|goal))?|\b(?:target|goal)(?:\s+speed[\s_-]?up)?"
               r"|\bfactor(?:\s+of)?|accelerate\s+by|加速比|目标)"
               r"\s*(?:=|:|\bof\b|\bby\b|\bto\b|\bis\b|为|是)?\s*(?:a\s+factor\s+of\s+|about\s+|around\s+|~)?")
    for match in re.finditer(rf"{keyword}(?P<n>{_NUM})(?![\d.])(?!\s*(?:%|percent|steps?|步|{_SPEED_UNIT}))",
                             text):
        add(match, _finite(match.group("n")), match.start("n"))
    _word_speedups(source, text, add)
    _percent_speedups(source, text, add)
    return found


def _slowdown(phrase: str) -> UnsupportedRequest:
    return UnsupportedRequest(
        f"{phrase.strip()!r} asks for a slowdown: diffaccel makes pipelines faster; ask for e.g. '2x faster'"
    )


def _word_speedups(source: _Text, text: str, add) -> None:
    slow = re.search(r"\btwice\s+as\s+slow|\bhalf\s+(?:the\s+)?speed|\bhalf\s+as\s+fast|\bdouble\s+the\s+"
                     rf"{_TIME}|\btwice\s+as\s+long|速度\s*减半", text)
    if slow:
        raise _slowdown(slow.group(0))
    for asked in re.finditer(r"\bmake\s+(?:it|this|that|the\s+\w+)\s+slower\b|(?:让|使|把)[^，,。.;；]{0,12}变慢", text):
        if not re.search(r"(?:\bnot|n't|\bnever|\bwithout|不|别|防止|避免)\W*(?:\w+\W*)?$", text[:asked.start()]):
            raise _slowdown(" ".join(asked.group(0).split()))
    for pattern, value in (
        (r"\btwice\b(?!\s+the\s+steps)|\bdouble(?:s|d)?\s+(?:the\s+)?(?:speed|throughput)\b|\bdoubl\w*\s+(?:it|speed)\b", 2.0),
        (r"\btriple\w*\b|\bthrice\b", 3.0),
        (r"\bquadruple\w*\b", 4.0),
        (rf"\bhalv\w*\s+(?:the\s+|its\s+)?(?:\w+\s+)?{_TIME}|\bcut\s+(?:the\s+)?{_TIME}\s+in\s+half", 2.0),
        (r"(?:速度)?\s*翻倍|(?:时间|耗时|延迟)\s*(?:减少|缩短|降低)?\s*(?:了)?\s*(?:1\s*)?半|(?:1\s*)?半\s*的?\s*(?:时间|耗时|延迟)", 2.0),
    ):
        for match in re.finditer(pattern, text):
            add(match, value, match.start())
    for match in re.finditer(r"翻\s*(?P<n>\d+)\s*番", text):
        add(match, 2.0 ** min(float(match.group("n")), 10), match.start())
    fraction = rf"(?:(?P<k>\d+|a|an)\s+)?(?P<f>{'|'.join(_FRACTIONS)})\s+(?:of\s+)?(?:the\s+|its\s+)?(?:original\s+)?{_TIME}"
    for match in re.finditer(fraction, text):
        count = match.group("k")
        numerator = float(count) if count and count[0].isdigit() else 1.0
        if numerator > 0:
            add(match, _FRACTIONS[match.group("f")] / numerator, match.start())
    for match in re.finditer(rf"(?P<a>\d+)\s*/\s*(?P<b>\d+)\s+(?:of\s+)?(?:the\s+)?{_TIME}", text):
        if float(match.group("a")) > 0:
            add(match, _finite(match.group("b")) / _finite(match.group("a")), match.start())
    for match in re.finditer(r"(?P<b>\d+)\s*分之\s*(?P<a>\d+)\s*的?\s*(?:时间|耗时|延迟|时长)", text):
        if float(match.group("a")) > 0:
            add(match, _finite(match.group("b")) / _finite(match.group("a")), match.start())


def _percent_speedups(source: _Text, text: str, add) -> None:
    for match in re.finditer(r"(?P<n>\d+(?:\.\d+)?)\s*(?:%|percent\b)", text):
        fraction = _finite(match.group("n")) / 100
        before, after = text[max(0, match.start() - 40):match.start()], text[match.end():match.end() + 40]
        if re.match(r"\s*(?:slower|longer|more\s+time)", after):
            raise _slowdown(match.group(0) + " slower")
        if re.match(r"\s*(?:of\s+(?:the\s+)?(?:original\s+|its\s+)?)?speed", after) or re.search(r"\bat\s*$", before):
            value = fraction
        elif re.match(rf"\s*(?:of\s+(?:the\s+)?(?:original\s+|its\s+)?)?{_TIME}|\s*的\s*(?:时间|耗时|延迟)", after):
            value = 1 / fraction if fraction else math.inf
        elif re.match(r"\s*(?:less|lower|shorter|fewer|reduction|decrease|cut)\b", after) or re.search(
            rf"(?:reduc|cut|lower|decreas|shorten|shav|trim|slash|减少|降低|缩短|减)\w*\s+(?:\S+\s+){{0,4}}(?:by\s+)?$"
            rf"|{_TIME}\s+(?:by\s+)?$|(?:时间|耗时|延迟)\s*(?:减少|降低|缩短)\s*(?:了)?\s*$", before
        ):
            if fraction >= 1:
                raise UnsupportedRequest(f"a time cut of {match.group(0)} is impossible: ask for e.g. '60% less time'")
            value = 1 / (1 - fraction)
        elif re.search(r"(?:faster|quicker|speed|speedup|boost|accelerat\w*|提速|加速|提升|快)\W*(?:\w+\W+){0,3}$",
                       before) or re.match(r"\s*(?:faster|quicker|speed|boost|more\s+throughput)", after):
            value = 1 + fraction
        else:
            continue
        add(match, value, match.start())


# ------------------------------------------------------------------------------------------------
# Checks on what is left
# ------------------------------------------------------------------------------------------------

_TYPO_TARGETS = {
    "sdxl": ("SDXL", "model"), "sd15": ("SD1.5", "model"), "sd21": ("SD2.1", "model"),
    "ddim": ("DDIM", "sampler"), "unipc": ("UniPC", "sampler"), "dpmpp": ("DPM-Solver++", "sampler"),
    "dpmsolver": ("DPM-Solver++", "sampler"), "deepcache": ("DeepCache", "accelerators"),
    "tgate": ("T-Gate", "accelerators"),
}
_NOT_TYPOS = {"dim", "gate", "date", "data", "unit", "unix", "skill", "state", "deep", "cache", "sdk",
              "sd1", "sd2", "ddr", "grate", "sdxl", "sd15", "sd21"}


def _check_typos(source: _Text, task: Task) -> None:
    """A name one slip away from a known one ('SDLX') is asked about, never replaced by a default."""
    tokens = re.findall(r"[a-z0-9][a-z0-9.+_-]*", source.text)
    candidates = tokens + [a + b for a, b in zip(tokens, tokens[1:]) if a.isalpha() and (b.isalpha() or a == "sd")]
    stated = set(task.accelerators or ()) | set(task.excluded or ())
    for token in candidates:
        compact = re.sub(r"[^a-z0-9]", "", token.replace("+", "p"))
        if len(compact) < 3 or compact in _NOT_TYPOS or token in _NOT_TYPOS:
            continue
        for target, (name, kind) in _TYPO_TARGETS.items():
            limit = 2 if len(target) >= 8 else 1
            if abs(len(compact) - len(target)) > limit or compact == target:
                continue
            if _distance(compact, target) > limit:
                continue
            if (kind == "model" and task.model is None) or (kind == "sampler" and task.sampler is None) or (
                kind == "accelerators" and name not in stated
            ):
                raise UnsupportedRequest(f"unknown name {token!r}: did you mean {name}?")


def _distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit ('sdlx' -> 'sdxl')."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


def _check_domain(source: _Text, task: Task) -> None:
    named_sd = re.search(_SD_NAMED, normalize(source.raw))
    strong = [task.model, task.sampler, task.accelerators, task.excluded, task.knobs, task.engine]
    if any(value is not None for value in strong) or named_sd:
        return
    words = re.findall(r"[a-z][a-z'-]*", source.text)
    foreign = [w for w in words if w not in _FILLER] + [
        ch for ch in source.text if re.match(f"[{_CJK}]", ch) and ch not in _CJK_FILLER
    ]
    if task.steps is None and task.speedup is None or foreign:
        what = f" ({foreign[0]!r} is not part of one)" if foreign and (task.steps or task.speedup) else ""
        raise UnsupportedRequest(
            f"this does not look like a Stable Diffusion acceleration request{what}: name a model "
            f"({', '.join(MODELS)}), a sampler ({', '.join(SAMPLERS)}), a step count, accelerators "
            f"({', '.join(ACCELERATORS)}) or a speedup, e.g. 'make SDXL 2x faster with UniPC'"
        )


def stated_numbers(text: str) -> dict[str, set[float]]:
    """The numbers a request states for steps and for the speedup, each read in its own context.

    Grounds an LLM's answer: a number it gives for a field counts only if the text states that
    number for that field, so '2' from 'SDXL UniPC 2x' is never a step count. Looser than the
    grammar (any integer followed by a word, e.g. '30 rounds of denoising', may be a step count),
    so the LLM can add what the rules miss, but never a number the text ties to something else.
    """
    source = _Text(normalize(text), text)
    source.take(r"\b\d{3,5}\s*[x*]\s*\d{3,5}\b|\b\d{3,5}\s*px\b")
    try:
        _knobs(source)
        for patterns in (_MODEL_PATTERNS, _SAMPLER_PATTERNS):
            _found(source, patterns)
        speedups = set(speedup_mentions(source).values())
    except UnsupportedRequest:
        return {"steps": set(), "speedup": set()}
    steps = set()
    not_steps = r"(?:s|secs?|seconds?|ms|min|minutes?|hours?|gb|mb|px|pixels?|images?|prompts?|seeds?|%|percent)\b"
    for match in re.finditer(rf"(?<![\w.*/+{{}}-])(?P<n>\d+)(?![\d.])(?!\s*{not_steps})(?=\s*[a-z{_CJK}])",
                             source.text):
        steps.add(float(match.group("n")))
    for match in re.finditer(rf"{_STEP_WORD}{_STEP_LINK}(?P<n>\d+)(?![\d.])", source.text):
        steps.add(float(match.group("n")))
    return {"steps": steps, "speedup": {round(v, 4) for v in speedups}}
