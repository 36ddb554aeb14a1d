"""Replay a diffusers pipeline's U-Net (and text encoders) as CUDA graphs, composed with DeepCache,
T-GATE and ToMe.

Standalone on purpose: it imports the standard library and torch only, because generated scripts
embed this file verbatim. The public API:

    graphs = enable_graphs(pipe)   # after the accelerators are applied; calls stay the same
    image = pipe(...).images[0]    # or pipe.tgate(...): each U-Net step replays a graph
    graphs()                       # undo: eager again, graph memory freed
    graphs_supported(device)       # CUDA graphs need a CUDA device

    undo = compile_pipeline(pipe)  # optional, BEFORE the accelerators: inductor kernels, captured

Which graph runs at which step. An accelerated U-Net call is not one function: DeepCache runs the
full U-Net every `cache_interval` steps and a shallow one (recompute only the skip branch
`cache_branch_id`) in between; T-GATE changes what each attention does per phase (compute, cache,
reuse) and drops guidance after its gate step (batch 2 -> 1); ToMe's ratio fixes the token counts.
So every call gets a key: its inputs' shapes and dtypes, DeepCache's decision for this step (full or
shallow, with interval and branch), T-GATE's attention flags and which attention caches are filled,
ToMe's knobs. Each key gets its own graph, captured the first time the key occurs and replayed after.
DeepCache alone: two graphs (full, shallow). T-GATE: one per phase (warm-up, self-attention cache,
self-attention reuse, the gate step, after the gate at batch 1). Combinations: the product that occurs.

Where cached features live. DeepCache keeps block outputs in `helper.cached_output`; T-GATE keeps
attention outputs in each Attention's `cache`. The engine treats both as state slots. When a step is
captured, the slots it writes end up holding the graph's own output tensors, in its memory pool; each
replay rewrites those tensors in place and puts them back in the slots, where the eager step would
have put fresh tensors. A graph that reads a slot (the shallow step reads the full step's features)
reads the address it was captured with, so it is replayed only while the slot holds that very tensor;
otherwise another variant of the key is captured. Which tensors a step reads is found in the warm-up
run before each capture, by a dispatch mode that watches the slot tensors' storages.

Why a memory pool per graph. Graphs that share a pool are safe only if they replay in the order they
were captured. Here the full graph replays after the shallow ones and would overwrite the memory
where their outputs, and the features they read, live. With a private pool (torch.cuda.graph's
default) a graph's outputs change only when the same graph replays, which is exactly when the eager
step would have replaced them.

No host sync in a step. DeepCache's own wrapper finds the step index with `.item()`, which cannot be
captured; the engine reads the index from the timestep's position in `scheduler.timesteps` and
captures through DeepCache's inner forward, keeping DeepCache's bookkeeping (`cur_timestep`,
`start_timestep`) as its wrapper would.

Compiled kernels, captured. `compile_pipeline` compiles the U-Net's forward (and the VAE decoder's)
with inductor (static shapes, no CUDA graphs of its own) before the accelerators wrap it, so
DeepCache's helper, tgate's loaders and ToMe's patched blocks all run inside the compiled forward.
Each capture warms its step up once plainly, which compiles that step's variant (DeepCache full or
shallow, T-GATE's phase); the capture then records the compiled kernels, and replay never runs
Python again, so the per-step guards that would make a plain `torch.compile` recompile every
DeepCache step cost nothing here. Measured on one H100 (benchmarks/results/graph_probe_h100.md,
call 6): a graph DeepCache 3/0 image 40% shorter on SD1.5 and 28% on SD2.1, for a first call of
about two minutes.

Fallback. On a CPU, or where a capture fails, or for arguments it cannot key, a call runs eagerly,
with one warning line on stderr. Backends: CudaGraphBackend on CUDA; TapeBackend, a CPU stand-in
for tests that "captures" by recording every aten op with its tensors and "replays" by re-running
the record into the same tensors, so a static-buffer mistake gives a wrong image on the CPU too.
"""

from __future__ import annotations

import collections
import inspect
import sys
import time
import weakref
from contextlib import ExitStack, contextmanager, nullcontext

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["enable_graphs", "compile_pipeline", "graphs_supported", "Graphs", "CudaGraphBackend", "TapeBackend",
           "CaptureError"]

MAX_GRAPHS = 48  # per module; each holds a pool about one step's activations in size


def graphs_supported(device) -> bool:
    """Whether graphs can run on `device` (a CUDA device with a CUDA build of torch)."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def enable_graphs(pipe, backend=None, text_encoders: bool = True) -> "Graphs":
    """Run `pipe`'s U-Net (and text encoders) as graphs from the next call on; return the undo.

    Apply the accelerators first or after, as you like: each step reads their state afresh. After
    moving the pipeline or changing its weights, undo and enable again (graphs keep addresses).
    """
    device = pipe.unet.device
    if backend is None:
        if not graphs_supported(device):
            _warn(f"CUDA graphs need a CUDA device, the U-Net is on {device}: running eager")
            return Graphs([])
        backend = CudaGraphBackend()
    unet_states = [_DeepCacheState(pipe), _TGateState(pipe.unet), _ToMeState(pipe.unet)]
    engines = [_Engine("unet", pipe.unet, backend, unet_states)]
    if text_encoders:
        for name in ("text_encoder", "text_encoder_2"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module):
                engines.append(_Engine(name, module, backend, []))
    for engine in engines:
        engine.install()
    return Graphs(engines)


def compile_pipeline(pipe, backend="inductor"):
    """Compile `pipe.unet`'s forward, and its VAE decoder's, with torch.compile (`backend`, static
    shapes); return the undo.

    Call it BEFORE applying the accelerators and `enable_graphs`, and undo it after undoing them:
    the accelerators then wrap the compiled forward. Compiling happens in the first call of each
    step variant (a minute or more with inductor); inductor's on-disk caches shorten a second start.
    Until the undo, in the calling thread: dynamo's recompile limit is raised, since each variant the
    engine captures is one compile; the U-Net is channels-last; and inductor folds the weights into
    its code as constants (freezing: their layouts chosen once, some fused, a copy per compiled
    variant), so weights changed while compiled do not reach the compiled code: undo, change them,
    compile again. The undo resets dynamo (`torch._dynamo.reset`), which forgets every compiled code
    of the process, the frozen weights with it. The decoder is left alone where the pipeline casts
    its fp16 VAE to fp32 for each decode (SDXL).
    """
    unet = pipe.unet
    if not _plain_forward(unet):
        raise ValueError("compile the U-Net before applying the accelerators (its forward is already "
                         "wrapped), and undo it after undoing them")
    if getattr(torch.compiler, "set_stance", None) is None:
        _warn(f"compiling under the graph engine needs torch 2.6 or later (this is {torch.__version__}): "
              "not compiling")
        return lambda: None
    from torch import _dynamo
    from torch._inductor import config as inductor

    with ExitStack() as undo:  # a failure half-way undoes what was done
        undo.callback(_dynamo.reset)  # runs last: compiled code would keep the frozen weights
        config = _dynamo.config
        limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        undo.enter_context(config.patch(**{limit: max(getattr(config, limit), 2 * MAX_GRAPHS)}))
        # Measured on an H100 (graph_probe_h100.md, calls 6-7 and the script check): with freezing and
        # channels-last 11% off a compiled graph DeepCache step; 1x1 convolutions as matmuls within
        # noise (SDXL, scripts); the compiled decoder 16% more off SD1.5's image.
        undo.enter_context(inductor.patch(freezing=True, conv_1x1_as_mm=True))
        if not _channels_last(unet):
            unet.to(memory_format=torch.channels_last)
            undo.callback(unet.to, memory_format=torch.contiguous_format)
        modules = [unet]
        vae = getattr(pipe, "vae", None)
        if vae is not None and not _upcasts_vae(pipe):
            modules.append(vae.decoder)
        for module in modules:
            module.forward = torch.compile(module.forward, backend=backend, dynamic=False)
            undo.callback(module.__dict__.pop, "forward", None)
        return undo.pop_all().close


def _channels_last(module) -> bool:
    weight = next((p for p in module.parameters() if p.dim() == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def _upcasts_vae(pipe) -> bool:
    """Whether `pipe` casts its fp16 VAE to fp32 for each decode (SDXL's `force_upcast`): its decoder's
    weights then change every call, and compiled code would not follow."""
    vae = pipe.vae
    call = inspect.unwrap(type(pipe).__call__)
    return (bool(getattr(vae.config, "force_upcast", False)) and vae.dtype == torch.float16
            and "needs_upcasting" in call.__code__.co_varnames)


def _plain_forward(module) -> bool:
    """Whether `module.forward` is its class's own (DeepCache's undo leaves that bound method behind
    as an instance attribute)."""
    forward = module.__dict__.get("forward")
    return forward is None or (getattr(forward, "__self__", None) is module
                               and getattr(forward, "__func__", None) is type(module).forward)


class Graphs:
    """What `enable_graphs` returns: call it to undo; each engine's counters and step log by name."""

    def __init__(self, engines):
        self.engines = {engine.name: engine for engine in engines}

    def __call__(self) -> None:
        for engine in self.engines.values():
            engine.uninstall()

    def __getitem__(self, name) -> "_Engine":
        return self.engines[name]

    @property
    def capture_seconds(self) -> float:
        return sum(engine.capture_seconds for engine in self.engines.values())

    @property
    def fallbacks(self) -> list:
        return [reason for engine in self.engines.values() for reason in engine.fallbacks]


class CaptureError(RuntimeError):
    """A step cannot be captured (it reads a device value on the host, say)."""


class _Eager(Exception):
    """This call runs eagerly; the message says why."""


def _warn(message: str) -> None:
    print(f"diffaccel graphs: {message}", file=sys.stderr)


# -- backends -------------------------------------------------------------------------------------


class CudaGraphBackend:
    """torch.cuda.CUDAGraph, each graph in its own memory pool, warmed up and captured on one side
    stream (cuBLAS keeps a workspace per stream, so warm-up and capture must share it)."""

    name = "cuda"

    def __init__(self):
        self._stream = None

    def _side_stream(self):
        if self._stream is None:
            self._stream = torch.cuda.Stream()
        return self._stream

    @contextmanager
    def warmup(self):
        stream = self._side_stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            yield
        torch.cuda.current_stream().wait_stream(stream)

    def capture(self, fn):
        # torch.cuda.graph() would also run gc.collect() and empty_cache() on each capture: slow,
        # and not needed here. pool=None gives the graph a private pool.
        graph = torch.cuda.CUDAGraph()
        stream = self._side_stream()
        torch.cuda.synchronize()
        with torch.cuda.stream(stream):
            graph.capture_begin(capture_error_mode="thread_local")
            try:
                output = fn()
            except BaseException:
                try:
                    graph.capture_end()
                except Exception:
                    pass
                raise
            graph.capture_end()
        torch.cuda.current_stream().wait_stream(stream)
        return graph, output

    def replay(self, graph) -> None:
        graph.replay()


class TapeBackend:
    """A CPU stand-in for CUDA graphs, for tests. Capture runs the step once while recording each
    aten op with its argument and result tensors; replay re-runs the record, writing each result into
    the tensor recorded for it. Like a real graph it reads inputs, weights and cached features from
    the tensors it was captured with and writes its outputs to the same tensors every time; like a
    real capture it refuses ops that need a device value on the host (`.item()`, `nonzero`)."""

    name = "tape"

    def __init__(self):
        self.captures = 0
        self.replays = 0

    def warmup(self):
        return nullcontext()

    def capture(self, fn):
        recorder = _Recorder()
        with recorder:
            output = fn()
        self.captures += 1
        return recorder.tape, output

    def replay(self, tape) -> None:
        self.replays += 1
        for func, args, kwargs, out in tape:
            result = func(*args, **kwargs)
            if out is not None:
                for target, value in zip(_tensors(out), _tensors(result)):
                    target.copy_(value)


_HOST_TYPES = {"Scalar", "bool", "int", "float", "complex", "SymInt", "SymFloat", "SymBool", "number"}
_HOST_READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique", "_unique2",
               "unique_consecutive", "equal", "is_nonzero", "item"}


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.tape = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        schema = func._schema
        if func.overloadpacket.__name__ in _HOST_READS or any(
            str(ret.type) in _HOST_TYPES for ret in schema.returns
        ):
            raise CaptureError(f"{func} reads a device value on the host: not capturable")
        out = func(*args, **kwargs)
        writes = any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
        if writes:
            self.tape.append((func, args, kwargs, None))  # re-run in place on the same memory
        elif any(ret.alias_info is not None for ret in schema.returns):
            pass  # a view: its memory is its base's, which the tape keeps up to date
        elif not func.overloadpacket.__name__.startswith("empty"):
            self.tape.append((func, args, kwargs, out))
        return out


class _ReadTracker(TorchDispatchMode):
    """Which state slots a step reads: the slots whose tensors' storages some op takes as input."""

    def __init__(self, storages: dict):
        super().__init__()
        self.storages = storages
        self.read: set = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for leaf in tree_leaves((args, kwargs)) if self.storages else ():
            if isinstance(leaf, torch.Tensor):
                names = self.storages.get(_storage(leaf))
                if names:
                    self.read.update(names)
        return func(*args, **kwargs)


# -- the engine -----------------------------------------------------------------------------------


class _Graph:
    """One captured step: where its inputs are copied to, what it returns, which state it needs."""

    def __init__(self, handle, inputs, output, reads, writes):
        self.handle = handle
        self.inputs = inputs  # static input tensors, in the order of _tensors((args, kwargs))
        self.output = output  # static output structure
        # (slot, index of a tensor in the slot's value) -> the tensor it was captured reading. Not
        # the whole value: a DeepCache block output mixes fresh tensors with cached ones.
        self.reads = reads
        self.writes = writes  # slot -> the object this graph leaves there (None: emptied)


_GRAPHED_CLASSES: dict = {}


def _graphed_class(cls):
    """A subclass whose calls go through the module's engine; named like the original."""
    if cls not in _GRAPHED_CLASSES:

        def __call__(self, *args, **kwargs):
            return self.__dict__["_diffaccel_graphs"](self, args, kwargs)

        graphed = type(cls.__name__, (cls,), {"__call__": __call__, "_diffaccel_original": cls})
        graphed.__module__, graphed.__qualname__ = cls.__module__, cls.__qualname__
        _GRAPHED_CLASSES[cls] = graphed
    return _GRAPHED_CLASSES[cls]


class _Engine:
    """Keys, captures and replays the calls of one module (the U-Net or a text encoder)."""

    def __init__(self, name, module, backend, states):
        self.name = name
        self.module = module
        self.backend = backend
        self.states = states
        self.graphs: dict = {}  # key -> [_Graph, ...] (variants that read different tensors)
        self.log = collections.deque(maxlen=4096)  # (label, "capture" | "replay" | "eager")
        self.captures = 0  # graphs captured, kept after undo (graph_count is those still held)
        self.capture_seconds = 0.0
        self.fallbacks: list = []
        self.failed: set = set()
        self._original_call = None

    # installing ---------------------------------------------------------------------------------
    def install(self) -> None:
        module = self.module
        if "_diffaccel_graphs" in module.__dict__:
            raise ValueError(f"graphs are already enabled on this {self.name}")
        original = type(module)
        self._original_call = original.__call__
        module.__dict__["_diffaccel_graphs"] = self
        module.__class__ = _graphed_class(original)

    def uninstall(self) -> None:
        module = self.module
        if module.__dict__.get("_diffaccel_graphs") is self:
            module.__class__ = type(module)._diffaccel_original
            del module.__dict__["_diffaccel_graphs"]
        self.graphs.clear()

    @property
    def graph_count(self) -> int:
        return sum(len(variants) for variants in self.graphs.values())

    # one call -----------------------------------------------------------------------------------
    def __call__(self, module, args, kwargs):
        try:
            key, label = self._key(args, kwargs)
        except _Eager as reason:
            return self._eager(str(reason), ("eager",), args, kwargs)
        if key in self.failed:
            return self._eager(None, label, args, kwargs)
        graph = self._find(key)
        event = "replay"
        if graph is None:
            try:
                graph = self._capture(key, args, kwargs)
            except Exception as error:  # a capture that fails leaves the step to eager
                self.failed.add(key)
                return self._eager(f"capture failed ({type(error).__name__}: {error})".splitlines()[0],
                                   label, args, kwargs)
            event = "capture"
        self.log.append((label, event))
        return self._replay(graph, args, kwargs)

    def _eager(self, reason, label, args, kwargs):
        if reason is not None and not self.fallbacks:
            _warn(f"{self.name}: {reason}; running those steps eager")
        if reason is not None:
            self.fallbacks.append(reason)
        self.log.append((label, "eager"))
        # A compiled U-Net guards on DeepCache's step index: steps run eager would each compile
        # again (minutes each with inductor). Compiled code already there still runs.
        with _eager_stance("eager_on_recompile"):
            return self._original_call(self.module, *args, **kwargs)

    def _key(self, args, kwargs):
        signature = _signature((args, kwargs))
        modes = tuple(state.mode(args, kwargs) for state in self.states)
        tensors = _tensors((args, kwargs))
        parts = [f"b{tensors[0].shape[0]}"] if tensors and tensors[0].dim() else []
        parts += [state.label(mode) for state, mode in zip(self.states, modes) if mode is not None]
        return (signature, modes), ",".join(parts)

    def _find(self, key):
        for graph in self.graphs.get(key, ()):
            if all(_leaf(self._get(slot), index) is tensor
                   for (slot, index), tensor in graph.reads.items()):
                return graph
        return None

    def _replay(self, graph, args, kwargs):
        for static, new in zip(graph.inputs, _tensors((args, kwargs))):
            if static is not new:
                static.copy_(new)
        self.backend.replay(graph.handle)
        for slot, value in graph.writes.items():
            self._put(slot, value)
        # The caller owns what it gets; the static output is rewritten by this graph's next replay.
        return _map_tensors(torch.Tensor.clone, graph.output)

    def _capture(self, key, args, kwargs):
        if self.graph_count >= MAX_GRAPHS:
            raise CaptureError(f"more than {MAX_GRAPHS} graphs for one {self.name}")
        started = time.perf_counter()
        before = self._slots()
        storages: dict = {}  # storage -> {(slot, index of the tensor in the slot's value)}
        for slot, value in before.items():
            for index, tensor in enumerate(_tensors(value)):
                if _storage(tensor):
                    storages.setdefault(_storage(tensor), set()).add((slot, index))
        static = _map_tensors(torch.Tensor.clone, (args, kwargs))
        tracker = _ReadTracker(storages)
        try:
            with ExitStack() as stack:
                for state in self.states:
                    stack.enter_context(state.capturing())
                with self.backend.warmup():
                    # Once plainly: compiled blocks (a user's torch.compile) compile here, outside
                    # any dispatch mode. Then once under the tracker with compiled code standing
                    # aside: torch.compile skips a frame called under a dispatch mode and keeps
                    # skipping it after, so without the stance the blocks would run eager for good.
                    self._call_inner(static)
                    self._restore(before)
                    with _eager_stance(), tracker:
                        self._call_inner(static)  # finds the slots read
                self._restore(before)
                handle, output = self.backend.capture(lambda: self._call_inner(static))
        except BaseException:
            self._restore(before)
            raise
        after = self._slots()
        writes = {slot: value for slot, value in after.items() if before.get(slot) is not value}
        writes.update({slot: None for slot in before if slot not in after})
        reads = {(slot, index): _tensors(before[slot])[index] for slot, index in tracker.read}
        graph = _Graph(handle, _tensors(static), output, reads, writes)
        self.graphs.setdefault(key, []).append(graph)
        self.captures += 1
        self.capture_seconds += time.perf_counter() - started
        return graph

    def _call_inner(self, static):
        args, kwargs = static
        return self._original_call(self.module, *args, **kwargs)

    # state slots: (index of the state, its own slot name) -----------------------------------------
    def _slots(self) -> dict:
        return {(index, name): value for index, state in enumerate(self.states)
                for name, value in state.slots().items()}

    def _get(self, slot):
        return self.states[slot[0]].get(slot[1])

    def _put(self, slot, value) -> None:
        self.states[slot[0]].put(slot[1], value)

    def _restore(self, snapshot: dict) -> None:
        for slot in self._slots():
            if slot not in snapshot:
                self._put(slot, None)
        for slot, value in snapshot.items():
            self._put(slot, value)


def _eager_stance(stance="force_eager"):
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance(stance) if set_stance is not None else nullcontext()


# -- what each accelerator keeps between steps ----------------------------------------------------


class _State:
    """An accelerator's part of a step's key, and the tensors it keeps from one step to the next."""

    def mode(self, args, kwargs):
        return None

    def label(self, mode) -> str:
        return str(mode)

    def slots(self) -> dict:
        return {}

    def get(self, name):
        return None

    def put(self, name, value) -> None:
        pass

    def capturing(self):
        return nullcontext()


class _DeepCacheState(_State):
    """DeepCacheSDHelper: full or shallow step, and its cached block outputs."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.helper = None
        self._timesteps = None
        self._values: list = []

    def _find_helper(self):
        helper = getattr(self.pipe, "deepcache", None)  # tgate's DeepCache loaders put it there
        if helper is None:  # DeepCacheSDHelper wraps unet.forward in a closure over itself
            wrapper = self.pipe.unet.__dict__.get("forward")
            for cell in getattr(wrapper, "__closure__", None) or ():
                content = cell.cell_contents
                if hasattr(content, "cached_output") and hasattr(content, "function_dict"):
                    helper = content
        if helper is None or not getattr(helper, "function_dict", None):
            return None  # absent, or disabled
        return helper

    def mode(self, args, kwargs):
        helper = self.helper = self._find_helper()
        if helper is None:
            return None
        params = helper.params
        if params.get("skip_mode", "uniform") != "uniform":
            raise _Eager(f"DeepCache skip_mode={params['skip_mode']!r} is not graphed")
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        index = self._step_index(timestep)
        # What DeepCache's unet wrapper and is_skip_step would record for this step.
        helper.cur_timestep = index
        if helper.start_timestep is None:
            helper.start_timestep = index
        full = (index - helper.start_timestep) % params["cache_interval"] == 0
        return ("full" if full else "shallow", params["cache_interval"], params["cache_layer_id"],
                params["cache_block_id"])

    def label(self, mode) -> str:
        return mode[0]

    def _step_index(self, timestep) -> int:
        """DeepCache's `list(scheduler.timesteps).index(t.item())`, without the host sync when `t`
        is an element of `scheduler.timesteps` (the denoising loops iterate over that tensor)."""
        timesteps = self.pipe.scheduler.timesteps
        if self._timesteps is None or self._timesteps() is not timesteps:
            self._values = timesteps.tolist() if torch.is_tensor(timesteps) else list(timesteps)
            self._timesteps = weakref.ref(timesteps) if torch.is_tensor(timesteps) else lambda: None
        position = None
        if (torch.is_tensor(timestep) and torch.is_tensor(timesteps) and timestep.dim() == 0
                and timesteps.dim() == 1 and timestep.device == timesteps.device
                and _storage(timestep) == _storage(timesteps) and timesteps.stride(0) > 0):
            offset = timestep.storage_offset() - timesteps.storage_offset()
            if offset % timesteps.stride(0) == 0 and 0 <= offset // timesteps.stride(0) < len(self._values):
                position = offset // timesteps.stride(0)
        if position is not None:
            value = self._values[position]
        else:
            value = timestep.item() if torch.is_tensor(timestep) else timestep
        return self._values.index(value)

    def slots(self) -> dict:
        return dict(self.helper.cached_output) if self.helper is not None else {}

    def get(self, name):
        return self.helper.cached_output.get(name) if self.helper is not None else None

    def put(self, name, value) -> None:
        if self.helper is None:
            return
        if value is None:
            self.helper.cached_output.pop(name, None)
        else:
            self.helper.cached_output[name] = value

    @contextmanager
    def capturing(self):
        """Call DeepCache's inner forward: its wrapper's `.item()` cannot be captured."""
        helper = self.helper
        if helper is None:
            yield
            return
        unet = self.pipe.unet
        wrapper = unet.__dict__.get("forward")
        unet.__dict__["forward"] = helper.function_dict["unet_forward"]
        try:
            yield
        finally:
            if wrapper is None:
                unet.__dict__.pop("forward", None)
            else:
                unet.__dict__["forward"] = wrapper


_NONE = type("NoneSlot", (), {"__repr__": lambda self: "<None slot>"})()  # a slot holding None


class _TGateState(_State):
    """T-GATE: the flags its loop sets on every Attention's forward, and their caches."""

    def __init__(self, unet):
        self.attentions = [m for m in unet.modules() if type(m).__name__ == "Attention"]

    def mode(self, args, kwargs):
        flags = set()
        filled = []
        for index, attention in enumerate(self.attentions):
            forward = attention.__dict__.get("forward")
            if forward is not None:
                defaults = getattr(forward, "__defaults__", None)
                if defaults is None:
                    raise _Eager("an Attention forward is patched by something the engine can't key")
                flags.add(defaults)
            if attention.__dict__.get("cache") is not None:
                filled.append(index)
        if not flags and not filled:
            return None
        return frozenset(flags), tuple(filled)

    def label(self, mode) -> str:
        flags, _ = mode
        if len(flags) != 1:
            return "tgate"
        # tgate's forward(hidden_states, encoder_hidden_states=None, attention_mask=None,
        #                 keep_shape, ca_cache, sa_cache, ca_reuse, sa_reuse)
        keep_shape, ca_cache, sa_cache, ca_reuse, sa_reuse = next(iter(flags))[-5:]

        def word(cache, reuse):
            return "cache" if cache else "reuse" if reuse else "run"

        return f"ca-{word(ca_cache, ca_reuse)}/sa-{word(sa_cache, sa_reuse)}" + (
            "" if keep_shape else "/merge")

    # A cache is absent (before T-GATE's first step), None (tgate's forward set it so) or a tensor.
    # Eager tgate treats the first two alike; compiled blocks don't (their guards tell them apart),
    # so a warm-up restored as "absent" where it had been None recompiles inside the capture.
    # The slot keeps the three apart: no slot, _NONE, the tensor.

    def slots(self) -> dict:
        return {index: self.get(index) for index, attention in enumerate(self.attentions)
                if "cache" in attention.__dict__}

    def get(self, name):
        attributes = self.attentions[name].__dict__
        if "cache" not in attributes:
            return None
        return _NONE if attributes["cache"] is None else attributes["cache"]

    def put(self, name, value) -> None:
        if value is None:
            self.attentions[name].__dict__.pop("cache", None)
        else:
            self.attentions[name].__dict__["cache"] = None if value is _NONE else value


class _ToMeState(_State):
    """tomesd: no state between steps, but its knobs change the shapes inside the graph."""

    def __init__(self, unet):
        self.unet = unet
        self.block = next((m for m in unet.modules()
                           if any(c.__name__ == "BasicTransformerBlock" for c in type(m).__mro__)), None)

    def mode(self, args, kwargs):
        info = self.unet.__dict__.get("_tome_info")
        if self.block is None or info is None or type(self.block).__name__ != "ToMeBlock":
            return None
        knobs = {key: value for key, value in info["args"].items() if key != "generator"}
        if knobs.get("use_rand"):
            raise _Eager("ToMe with use_rand=True changes every step: not graphed")
        return tuple(sorted(knobs.items()))

    def label(self, mode) -> str:
        return f"tome{dict(mode)['ratio']}"

    @contextmanager
    def capturing(self):
        """Make the generator tomesd's first merge would make (a fork of the default one) before
        the warm-up: a compiled U-Net guards on whether it exists, so a warm-up that made it would
        leave the capture to compile again."""
        info = self.unet.__dict__.get("_tome_info")
        if info is not None and "generator" in info["args"] and info["args"]["generator"] is None:
            device = self.unet.device
            state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
            info["args"]["generator"] = torch.Generator(device=device).set_state(state)
        yield


# -- small helpers --------------------------------------------------------------------------------


def _storage(tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _leaf(value, index):
    if isinstance(value, torch.Tensor):
        return value if index == 0 else None
    tensors = _tensors(value)
    return tensors[index] if index < len(tensors) else None


def _signature(value):
    """A hashable description of a call's arguments: tensors by shape, dtype and device."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_signature(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((key, _signature(item)) for key, item in value.items()))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise _Eager(f"an argument of type {type(value).__name__} is not graphed")


def _tensors(value) -> list:
    """The tensors in a nest of tuples, lists and dicts, in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [tensor for item in value for tensor in _tensors(item)]
    if isinstance(value, dict):
        return [tensor for item in value.values() for tensor in _tensors(item)]
    return []


def _map_tensors(fn, value):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_map_tensors(fn, item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(fn, item) for item in value)
    if isinstance(value, dict):
        items = {key: _map_tensors(fn, item) for key, item in value.items()}
        return type(value)(**items) if hasattr(value, "to_tuple") else type(value)(items)
    return value
