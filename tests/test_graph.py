"""The graph engine's composition logic, on tiny pipelines on the CPU.

TapeBackend stands in for CUDA graphs: it records each step's aten ops with their tensors and
replays the record into the same tensors, so a step that reads a stale input or cached feature gives
a different image here, as it would on a GPU.
"""

import ast
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import needs_torch

pytestmark = [needs_torch]

from core.settings import DeepCacheParams, Settings, TGateParams, ToMeParams  # noqa: E402
from search import accelerators as acc  # noqa: E402


def graph():
    """search.graph, imported when a test runs: collection imports no torch."""
    from search import graph as module

    return module

STEPS = 8
GATE = 4


@pytest.fixture(scope="module")
def pipes():
    from search.pipelines import build_random

    return {}, build_random


def get_pipe(pipes, model, sampler="DDIM"):
    from search.pipelines import set_sampler

    cache, build = pipes
    if model not in cache:
        cache[model] = build(model)
    set_sampler(cache[model], sampler)
    return cache[model]


def image(pipe, plan, output_type="np"):
    import torch

    return acc.run(pipe, plan, prompt="a red cube", num_inference_steps=STEPS, guidance_scale=7.5,
                   generator=torch.Generator().manual_seed(0), output_type=output_type).images[0]


def eager_and_graph(pipe, model, settings, calls=2):
    """The eager image, the graph images of `calls` calls, and the engine's log."""
    plan = acc.plan(model, settings)
    undo = acc.apply(pipe, plan)
    reference = image(pipe, plan)
    undo()
    undo = acc.apply(pipe, plan)
    graphs = graph().enable_graphs(pipe, backend=graph().TapeBackend())
    try:
        images = [image(pipe, plan) for _ in range(calls)]
    finally:
        graphs()
        undo()
    return reference, images, graphs


def dc(interval, branch=0):
    return DeepCacheParams(cache_interval=interval, cache_branch_id=branch)


TOME = ToMeParams(ratio=0.5, max_downsample=1)
TGATE = TGateParams(gate_step=GATE)
SETTINGS = {
    "none": Settings(),
    "DeepCache": Settings(deepcache=dc(3)),
    "T-Gate": Settings(tgate=TGATE),
    "ToMe": Settings(tome=TOME),
    "DeepCache+ToMe": Settings(deepcache=dc(2), tome=TOME),
    "DeepCache+T-Gate": Settings(deepcache=dc(3), tgate=TGATE),
    "DeepCache+T-Gate+ToMe": Settings(deepcache=dc(3), tgate=TGATE, tome=TOME),
}


def steps(graphs, call=-1):
    """(label, event) of each U-Net step of one call."""
    log = list(graphs["unet"].log)
    return log[len(log) + call * STEPS:][:STEPS]


@pytest.mark.parametrize("name", SETTINGS)
def test_graph_gives_the_eager_image_and_replays_on_the_second_call(pipes, name):
    reference, (first, second), graphs = eager_and_graph(get_pipe(pipes, "SD1.5"), "SD1.5", SETTINGS[name])
    np.testing.assert_allclose(first, reference, atol=1e-5)
    np.testing.assert_allclose(second, reference, atol=1e-5)
    assert graphs.fallbacks == []
    assert [event for _, event in steps(graphs)] == ["replay"] * STEPS
    assert "capture" in [event for _, event in steps(graphs, call=-2)]
    assert graphs["text_encoder"].captures == 1  # prompt and negative prompt share one graph
    # One graph per U-Net variant, and with --compile one compile each (README, Engines)
    assert graphs["unet"].captures == UNET_VARIANTS[name]


UNET_VARIANTS = {"none": 1, "DeepCache": 2, "T-Gate": 4, "ToMe": 1, "DeepCache+ToMe": 2, "DeepCache+T-Gate": 6,
                 "DeepCache+T-Gate+ToMe": 6}


@pytest.mark.parametrize("interval,branch", [(2, 0), (3, 0), (4, 0), (5, 0), (2, 1), (3, 1)])
def test_deepcache_replays_a_full_and_a_shallow_graph(pipes, interval, branch):
    reference, (first, second), graphs = eager_and_graph(get_pipe(pipes, "SD1.5"), "SD1.5",
                                                         Settings(deepcache=dc(interval, branch)))
    np.testing.assert_allclose(second, reference, atol=1e-5)
    expected = ["full" if i % interval == 0 else "shallow" for i in range(STEPS)]
    assert [label.split(",")[1] for label, _ in steps(graphs)] == expected
    assert [event for _, event in steps(graphs, call=-2)][:2] == ["capture", "capture"]
    assert graphs["unet"].captures == 2


def test_shallow_graph_reads_the_full_graphs_output_buffers(pipes):
    pipe = get_pipe(pipes, "SD1.5")
    plan = acc.plan("SD1.5", Settings(deepcache=dc(3)))
    undo = acc.apply(pipe, plan)
    graphs = graph().enable_graphs(pipe, backend=graph().TapeBackend())
    try:
        image(pipe, plan)
        variants = {key[1][0][0]: v for key, v in graphs["unet"].graphs.items()}
        (full,), (shallow,) = variants["full"], variants["shallow"]
        assert full.reads == {} and shallow.reads
        # Every cached feature the shallow step reads is a tensor the full graph writes, kept as is.
        for (slot, index), tensor in shallow.reads.items():
            assert graph()._tensors(full.writes[slot])[index] is tensor
    finally:
        graphs()
        undo()


def compiled(pipe, how, backend):
    """Compile the U-Net's blocks (as benchmarks/graph_speed_probe.py can) or its whole forward
    (`compile_pipeline`, as generated scripts' --compile does), before the accelerators; the undo."""
    import torch

    torch._dynamo.reset()
    if how == "unet":
        return graph().compile_pipeline(pipe, backend=backend)
    blocks = [m for m in pipe.unet.modules() if type(m).__name__ in ("ResnetBlock2D", "Transformer2DModel")]
    for block in blocks:
        block.forward = torch.compile(block.forward, backend=backend, dynamic=False)
    return lambda: [block.__dict__.pop("forward", None) for block in blocks]


@pytest.mark.parametrize("how", ["blocks", "unet"])
def test_compiled_code_compiles_in_a_plain_warmup_and_its_reads_are_still_found(pipes, how):
    """torch.compile skips frames under a dispatch mode, which the read tracker and the tape are:
    the engine warms each step up once plainly first, and tracks reads with compiled code aside."""
    import torch
    from torch._dynamo.utils import counters

    pipe = get_pipe(pipes, "SD1.5")
    plan = acc.plan("SD1.5", Settings(deepcache=dc(3)))
    undo = acc.apply(pipe, plan)
    reference = image(pipe, plan)
    undo()
    counters.clear()
    uncompile = compiled(pipe, how, "eager")  # before the accelerators: DeepCache wraps compiled code
    try:
        undo = acc.apply(pipe, plan)
        graphs = graph().enable_graphs(pipe, backend=graph().TapeBackend())
        try:
            images = [image(pipe, plan) for _ in range(2)]
            variants = {key[1][0][0]: v for key, v in graphs["unet"].graphs.items()}
        finally:
            graphs()
            undo()
    finally:
        uncompile()
        frames = counters["stats"]["unique_graphs"]
        torch._dynamo.reset()
    assert frames > 0
    assert graph()._plain_forward(pipe.unet)
    (shallow,) = variants["shallow"]
    assert shallow.reads  # the cached features the shallow step reads, found with compiled code
    assert graphs.fallbacks == []
    for picture in images:
        np.testing.assert_allclose(picture, reference, atol=1e-5)


class PlainCaptureBackend:
    """Captures by calling the step plainly (as a CUDA capture does: no dispatch mode) and replays
    by calling it again, images be as they may: only what runs inside a capture is counted."""

    name = "plain"

    def __init__(self, counts):
        self.counts, self.during = counts, []

    def warmup(self):
        from contextlib import nullcontext

        return nullcontext()

    def capture(self, fn):
        before = dict(self.counts)
        output = fn()
        self.during.append({key: self.counts[key] - before[key] for key in self.counts})
        return fn, output

    def replay(self, fn) -> None:
        fn()


def counting_backend(counts):
    """A torch.compile backend that counts its compiles and the runs of what it compiled."""

    def counting(gm, example_inputs):
        counts["compiled"] += 1

        def run(*args):
            counts["executed"] += 1
            return gm.forward(*args)

        return run

    return counting


@pytest.mark.parametrize("how", ["blocks", "unet"])
def test_compiled_code_runs_in_captures_and_never_compiles_there(pipes, how):
    """Compiled code must run inside each capture (a tracker run without the eager stance would
    have switched it off for good), and must not compile there (CUDA forbids what compiling does
    while a stream captures): the warm-ups leave every slot, T-GATE's None caches included, as
    the capture will find them. DeepCache, T-GATE and ToMe all run inside a compiled U-Net."""
    import torch

    counts = {"compiled": 0, "executed": 0}
    counting = counting_backend(counts)
    pipe = get_pipe(pipes, "SD1.5")
    plan = acc.plan("SD1.5", Settings(deepcache=dc(3), tgate=TGATE, tome=ToMeParams(ratio=0.5)))
    stack = ExitStack()
    backend = PlainCaptureBackend(counts)
    uncompile = compiled(pipe, how, counting)
    try:
        stack.enter_context(torch._dynamo.config.patch(cache_size_limit=64))  # T-GATE's phases
        undo = acc.apply(pipe, plan)
        graphs = graph().enable_graphs(pipe, backend=backend, text_encoders=False)
        try:
            image(pipe, plan)
        finally:
            graphs()
            undo()
    finally:
        stack.close()
        uncompile()
        torch._dynamo.reset()
    assert len(backend.during) >= 4  # DeepCache full/shallow across T-GATE's phases
    assert [d["compiled"] for d in backend.during] == [0] * len(backend.during)
    assert all(d["executed"] > 0 for d in backend.during), backend.during


class FailingBackend(PlainCaptureBackend):
    def capture(self, fn):
        raise RuntimeError("no capture here")


def test_steps_left_eager_by_a_failed_capture_do_not_compile_the_unet_again_each_step(pipes):
    """A compiled U-Net guards on DeepCache's step index, so each step run eager would compile anew
    (minutes with inductor): the fallback runs compiled code only where it needs no new compile."""
    import torch

    counts = {"compiled": 0, "executed": 0}
    pipe = get_pipe(pipes, "SD1.5")
    plan = acc.plan("SD1.5", SETTINGS["DeepCache"])
    uncompile = compiled(pipe, "unet", counting_backend(counts))
    try:
        undo = acc.apply(pipe, plan)
        graphs = graph().enable_graphs(pipe, backend=FailingBackend(counts), text_encoders=False)
        try:
            image(pipe, plan, output_type="latent")  # no decode: the compiles counted are the U-Net's
        finally:
            graphs()
            undo()
    finally:
        uncompile()
        torch._dynamo.reset()
    assert graphs.fallbacks and all(event == "eager" for _, event in list(graphs["unet"].log)[-STEPS:])
    assert counts["compiled"] <= 2, counts  # the full and the shallow step's warm-ups, not one per step


def test_compile_pipeline_refuses_a_wrapped_forward_and_its_undo_leaves_the_unet_plain(pipes):
    pipe = get_pipe(pipes, "SD1.5")
    undo = acc.apply(pipe, acc.plan("SD1.5", SETTINGS["DeepCache"]))
    try:
        with pytest.raises(ValueError, match="before applying the accelerators"):
            graph().compile_pipeline(pipe, backend="eager")
    finally:
        undo()
    assert graph()._plain_forward(pipe.unet)  # DeepCache's undo leaves a bound forward behind
    import torch._dynamo

    from torch._inductor import config as inductor

    limit, freezing = torch._dynamo.config.recompile_limit, inductor.freezing
    weight = pipe.unet.conv_in.weight
    uncompile = graph().compile_pipeline(pipe, backend="eager")
    assert not graph()._plain_forward(pipe.unet) and not graph()._plain_forward(pipe.vae.decoder)
    assert torch._dynamo.config.recompile_limit > limit and inductor.freezing
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    uncompile()
    assert graph()._plain_forward(pipe.unet) and graph()._plain_forward(pipe.vae.decoder)
    assert torch._dynamo.config.recompile_limit == limit and inductor.freezing == freezing
    assert pipe.unet.conv_in.weight.is_contiguous()


def test_compile_pipeline_leaves_an_fp16_vae_that_sdxl_upcasts_alone(pipes):
    """SDXL casts an fp16 VAE with force_upcast to fp32 for each decode: compiled code would keep
    the weights of its first call. SD1.5's pipeline decodes in the VAE's own dtype."""
    import torch

    for model, upcasts in (("SDXL", True), ("SD1.5", False)):
        pipe = get_pipe(pipes, model)
        pipe.vae.to(torch.float16)
        try:
            assert graph()._upcasts_vae(pipe) is (upcasts and bool(pipe.vae.config.force_upcast))
            uncompile = graph().compile_pipeline(pipe, backend="eager")
            assert graph()._plain_forward(pipe.vae.decoder) is graph()._upcasts_vae(pipe)
            uncompile()
        finally:
            pipe.vae.to(torch.float32)
        assert not graph()._upcasts_vae(pipe)  # an fp32 VAE is not cast


@pytest.mark.skipif(shutil.which("c++") is None, reason="inductor on a CPU needs a C++ compiler")
def test_weights_changed_after_the_undo_reach_the_next_compile():
    """Inductor's freezing folds the weights into the compiled code, and dynamo keeps compiled code
    on the forward's code object across torch.compile wrappers: the undo must forget it."""
    import types

    import torch
    from torch._inductor import config as inductor

    class Unet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_in = torch.nn.Conv2d(4, 8, 3, padding=1)
            self.proj = torch.nn.Linear(8, 8)

        def forward(self, x):
            return self.proj(self.conv_in(x).permute(0, 2, 3, 1))

    pipe = types.SimpleNamespace(unet=Unet().eval())
    x = torch.randn(1, 4, 8, 8)
    torch._dynamo.reset()
    # One compile thread: no pool of compiling processes to starve the tests beside this one.
    with torch.no_grad(), inductor.patch(compile_threads=1):
        for scale in (1.0, 2.0):
            pipe.unet.conv_in.weight.mul_(scale)  # as fusing a LoRA would, between compiles
            expected = pipe.unet(x)
            uncompile = graph().compile_pipeline(pipe)
            try:
                assert torch.allclose(pipe.unet(x), expected, atol=1e-5)
            finally:
                uncompile()


def test_tgate_changes_graph_at_the_gate_and_drops_guidance(pipes):
    _, (_, second), graphs = eager_and_graph(get_pipe(pipes, "SD1.5"), "SD1.5", SETTINGS["T-Gate"])
    labels = [label for label, _ in steps(graphs)]
    assert [label.split(",")[0] for label in labels] == ["b2"] * GATE + ["b1"] * (STEPS - GATE)
    assert labels[GATE - 1].endswith("ca-cache/sa-cache/merge")  # the gate step averages the batch
    assert all("ca-reuse" in label for label in labels[GATE:])
    assert graphs["unet"].captures == 4  # warm-up, self-attention cache, the gate, after it


@pytest.mark.parametrize("model,sampler,name", [
    ("SD2.1", "DPM-Solver++", "DeepCache+T-Gate+ToMe"),
    ("SDXL", "UniPC", "DeepCache+T-Gate+ToMe"),
    ("SDXL", "DDIM", "DeepCache+ToMe"),
    ("SD1.5", "UniPC", "DeepCache"),
    ("SD1.5", "DPM-Solver++", "T-Gate"),
])
def test_other_models_and_samplers(pipes, model, sampler, name):
    settings = SETTINGS[name]
    if settings.tome and model == "SDXL":  # no attention at SDXL's downsample 1
        settings = settings.model_copy(update={"tome": TOME.model_copy(update={"max_downsample": 2})})
    reference, images, graphs = eager_and_graph(get_pipe(pipes, model, sampler), model, settings)
    for picture in images:
        np.testing.assert_allclose(picture, reference, atol=1e-5)
    assert graphs.fallbacks == []


def test_the_tape_catches_a_replay_that_skips_copying_its_inputs(pipes, monkeypatch):
    def replay_without_inputs(self, graph_, args, kwargs):
        self.backend.replay(graph_.handle)
        for slot, value in graph_.writes.items():
            self._put(slot, value)
        return graph()._map_tensors(lambda t: t.clone(), graph_.output)

    monkeypatch.setattr(graph()._Engine, "_replay", replay_without_inputs)
    reference, (first, _), _ = eager_and_graph(get_pipe(pipes, "SD1.5"), "SD1.5", SETTINGS["DeepCache"])
    assert np.abs(first - reference).max() > 1e-3


def test_tape_refuses_host_reads_like_a_capture():
    import torch

    x = torch.ones(3)
    with pytest.raises(graph().CaptureError, match="host"):
        graph().TapeBackend().capture(lambda: x.sum().item())


def failing_backend():
    class FailingBackend(graph().TapeBackend):
        def capture(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing")

    return FailingBackend()


def test_failed_capture_falls_back_to_eager_with_one_warning_line(pipes, capsys):
    pipe = get_pipe(pipes, "SD1.5")
    plan = acc.plan("SD1.5", SETTINGS["DeepCache"])
    undo = acc.apply(pipe, plan)
    reference = image(pipe, plan)
    capsys.readouterr()
    graphs = graph().enable_graphs(pipe, backend=failing_backend())
    try:
        pictures = [image(pipe, plan) for _ in range(2)]
    finally:
        graphs()
        undo()
    for picture in pictures:
        np.testing.assert_allclose(picture, reference, atol=1e-5)
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("diffaccel graphs: unet")]) == 1
    assert "capture failed" in err[0]
    assert {event for _, event in graphs["unet"].log} == {"eager"}


def test_cpu_runs_eager_with_one_warning_and_apply_takes_the_engine(pipes, capsys):
    pipe = get_pipe(pipes, "SD1.5")
    unet_class = type(pipe.unet)
    plan = acc.plan("SD1.5", SETTINGS["DeepCache+ToMe"])
    undo = acc.apply(pipe, plan)
    reference = image(pipe, plan)
    undo()
    capsys.readouterr()
    undo = acc.apply(pipe, plan, engine="graph")
    try:
        picture = image(pipe, plan)
    finally:
        undo()
    np.testing.assert_allclose(picture, reference, atol=1e-6)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA graphs need a CUDA device" in err[0]
    assert type(pipe.unet) is unet_class
    with pytest.raises(ValueError, match="engine"):
        acc.apply(pipe, plan, engine="compiled")


def test_undo_restores_the_modules_and_enabling_twice_is_refused(pipes):
    pipe = get_pipe(pipes, "SD1.5")
    classes = type(pipe.unet), type(pipe.text_encoder)
    graphs = graph().enable_graphs(pipe, backend=graph().TapeBackend())
    assert type(pipe.unet).__name__ == classes[0].__name__ and isinstance(pipe.unet, classes[0])
    with pytest.raises(ValueError, match="already"):
        graph().enable_graphs(pipe, backend=graph().TapeBackend())
    graphs()
    assert (type(pipe.unet), type(pipe.text_encoder)) == classes
    assert "_diffaccel_graphs" not in pipe.unet.__dict__


def test_graph_module_imports_only_the_standard_library_and_torch():
    from search import graph as module

    source = Path(module.__file__).read_text()
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert "torch" in roots and roots - {"torch"} <= set(sys.stdlib_module_names), roots
