"""One step of the torch engine captured in a CUDA graph and replayed: no Python, no per-kernel launches.

On a GPU the torch engine is bound by the host: at batch 256 a LeNet-5 step is a few hundred tiny kernels, each
launched from Python (measured on an H200: the engine 0.92x a hand-written eager PyTorch loop, ResNet-18 0.47x;
``docs/benchmarks.md``). :class:`CapturedStep` records a step function once into a ``torch.cuda.CUDAGraph`` and
replays it for every later batch of the same shape:

* the step reads its batch from static buffers, so each batch is first copied into them (one device copy);
* the first ``warmup`` full batches run eagerly on a side stream (real steps: cuDNN picks its algorithms, the
  caching allocator and autograd settle), the next one is captured and then replayed, so every batch is
  trained exactly once;
* a batch of another shape (the last, partial batch of an epoch) runs the function directly, eagerly;
* whatever the step must read or write across replays lives on the device: the loss and accuracy sums, the
  optimizer's ``iterations``, learning rate and bias corrections (:mod:`kzoo.engine.torch_optim`), so nothing
  is baked into the graph at capture but the shapes;
* off CUDA, with ``KZOO_CUDA_GRAPHS=0``, or when the caller gives a reason (a layer that runs as a Keras layer,
  an optimizer whose step reads host values, several workers), it calls the function directly; when capture
  itself fails (a host sync, a data-dependent shape), it says why in one line and runs eagerly from then on.

The step function is a plain ``fn(*batch)``: mixed precision can wrap its forward pass in ``torch.autocast``
inside the function, and the graph captures that too. :class:`CapturedForward` does the same for inference
(validation, ``kzoo predict`` / ``evaluate``): one graph per batch shape seen ``warmup`` times (at most a few),
recaptured when a weight changed outside the graph (folded batch norm caches in
:mod:`kzoo.engine.torch_inference` hold copies of weights).
"""

import logging
import os

import torch

log = logging.getLogger("kzoo.engine")

ENV = "KZOO_CUDA_GRAPHS"

# how a CapturedStep runs: replay a CUDA graph; copy into the static buffers and call the function (the graph's
# data flow without a graph: what the CPU test suite exercises); or call the function on the batch itself
GRAPH, BUFFERS, DIRECT = "graph", "buffers", "direct"


def disabled_reason(device):
    """Why steps on ``device`` are not captured (``None``: they are): not CUDA, or ``KZOO_CUDA_GRAPHS=0``."""
    if torch.device(device).type != "cuda":
        return f"CUDA graphs need a CUDA device, not {torch.device(device).type}"
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"{ENV}=0"
    return None


def default_mode(device):
    """``GRAPH`` on CUDA unless disabled, else ``DIRECT`` (the CPU tests set ``BUFFERS`` here)."""
    return DIRECT if disabled_reason(device) else GRAPH


def say_eager(name, reason):
    """The one line that says a step that could have been captured runs eagerly, and why."""
    log.warning("kzoo: %s runs eagerly, not in a CUDA graph: %s", name, reason)


def _cuda_capture(fn, static):
    """Record ``fn(*static)`` into a CUDA graph (nothing runs yet); ``(replay, outputs)``."""
    graph = torch.cuda.CUDAGraph()
    # thread_local: a streamed dataset's decoding threads may touch CUDA while this thread captures
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        outputs = fn(*static)
    return graph.replay, outputs


class CapturedStep:
    """``fn(*batch)`` replayed from a CUDA graph for batches of the first batch's shapes (module docstring).

    ``reason``: why this step must not be captured (``None``: it may), said in one line unless ``quiet`` (the
    caller said it already); ``name`` names it in the messages. ``mode`` and ``reason`` say afterwards what
    happened.
    """

    def __init__(self, fn, device, *, reason=None, name="training step", warmup=3, mode=None, quiet=False):
        self.fn, self.name, self.warmup = fn, name, warmup
        self.mode = mode or default_mode(device)
        self.reason = disabled_reason(device) if self.mode == DIRECT else None
        if reason and self.mode != DIRECT:
            self.mode, self.reason = DIRECT, reason
            if not quiet:
                say_eager(name, reason)
        self.static = self.side = None  # the batch buffers; the warm-up stream
        self.replay = self.outputs = None
        self.calls = 0  # full batches seen (warm-up, capture, replays)

    def _fits(self, batch):
        return len(batch) == len(self.static) and all(
            b.shape == s.shape and b.dtype == s.dtype and b.device == s.device for b, s in zip(batch, self.static))

    def __call__(self, *batch):
        if self.mode == DIRECT:
            return self.fn(*batch)
        if self.static is None:  # the first batch fixes the shapes: an epoch's full batch
            self.static = [torch.empty_like(b, memory_format=torch.contiguous_format) for b in batch]
        if not self._fits(batch):
            return self.fn(*batch)  # a partial batch: eagerly, no second graph
        for buffer, b in zip(self.static, batch):
            buffer.copy_(b)
        self.calls += 1
        if self.mode == BUFFERS:
            return self.fn(*self.static)
        if self.replay is not None:
            self.replay()
            return self.outputs
        if self.calls <= self.warmup:
            if not self.static[0].is_cuda:
                return self.fn(*self.static)
            side = self.side = self.side or torch.cuda.Stream()  # warm up off the capturing stream (torch's docs)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                outputs = self.fn(*self.static)
            torch.cuda.current_stream().wait_stream(side)
            return outputs
        try:
            self.replay, self.outputs = _capture(self.fn, self.static)
        except Exception as error:  # noqa: BLE001 (any capture error: run eagerly from now on)
            self.mode, self.replay = DIRECT, None
            self.reason = f"capture failed: {type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
            say_eager(self.name, self.reason)
            return self.fn(*self.static)  # the graph ran nothing: this batch still needs its step
        self.replay()  # capturing ran nothing: this is the batch's step
        return self.outputs


_capture = _cuda_capture  # the tests replace it to check the protocol on a CPU


class CapturedForward:
    """An inference function ``fn(x)`` with one :class:`CapturedStep` per input shape (up to ``shapes``), each
    captured after it was seen ``warmup`` times; ``versions()`` (a tuple) changing means the weights changed
    outside the graph, and the graphs are dropped and recaptured."""

    def __init__(self, fn, device, *, versions=None, warmup=2, shapes=4, name="inference forward"):
        self.fn, self.device, self.versions, self.warmup, self.shapes, self.name = (
            fn, device, versions, warmup, shapes, name)
        self.reason = disabled_reason(device) if default_mode(device) == DIRECT else None
        self.steps, self.key = {}, None

    def __call__(self, x):
        if self.reason is not None:
            return self.fn(x)
        key = self.versions() if self.versions else None
        if key != self.key:
            self.steps, self.key = {}, key
        shape = (tuple(x.shape), x.dtype)
        step = self.steps.get(shape)
        if step is None:
            if len(self.steps) >= self.shapes:
                return self.fn(x)
            step = self.steps[shape] = CapturedStep(self.fn, self.device, name=self.name, warmup=self.warmup)
        if step.mode == DIRECT and step.reason and step.reason.startswith("capture failed"):
            self.reason = step.reason  # a model that cannot be captured: stop trying for every shape
        out = step(x)
        if self.versions:  # capturing or warming up may itself touch no weight; replays never bump versions
            self.key = self.versions()
        return out
