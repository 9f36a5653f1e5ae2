"""A least-recently-used store bounded by bytes, and the draft record it keeps for resuming refines.

torch is imported where tensors are handled, so that creating an Engine on a GUI thread stays instant.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass, field



class ByteLRU:
    """Maps keys to values whose sizes (bytes) the caller states; evicts the least recently used past `max_bytes`."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, value, nbytes: int) -> bool:
        """Store `value`; False (and nothing stored) when it alone exceeds the bound."""
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if nbytes > self.max_bytes:
                return False
            self._items[key] = (value, int(nbytes))
            self._bytes += int(nbytes)
            while self._bytes > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size
            return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def tensor_bytes(obj, _seen: set | None = None) -> int:
    """Bytes held by the tensors reachable from obj (tensors, lists, tuples, dicts, plain objects' __dict__)."""
    import torch

    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(o, seen) for o in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(o, seen) for o in obj.values())
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(tensor_bytes(o, seen) for o in vars(obj).values())
    return 0


def _snapshot(scheduler):
    """A copy of a scheduler's state that later steps cannot change.

    Schedulers replace their tensors and mutate only their containers (UniPC's model_outputs, timestep_list), so a
    shallow copy with fresh containers is exact and ~20x cheaper than deepcopy, which also copies the static
    1000-entry noise tables every step.
    """
    snap = copy.copy(scheduler)
    for name, value in vars(snap).items():
        if isinstance(value, (list, dict)):
            setattr(snap, name, copy.copy(value))
    return snap


def _offload(obj) -> tuple[object, dict]:
    """Move the tensors an object holds (directly or in lists) to the CPU; returns it and where each one was."""
    import torch

    places: dict = {}
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            places[name] = value.device
            setattr(obj, name, value.to("cpu"))
        elif isinstance(value, list) and any(isinstance(v, torch.Tensor) for v in value):
            places[name] = [v.device if isinstance(v, torch.Tensor) else None for v in value]
            setattr(obj, name, [v.to("cpu") if isinstance(v, torch.Tensor) else v for v in value])
    return obj, places


def _restore(obj, places: dict):
    """Put the tensors `_offload` moved back where they were (the same devices: bit-identical resumes)."""
    for name, where in places.items():
        value = getattr(obj, name)
        if isinstance(where, list):
            setattr(obj, name, [v.to(d) if d is not None else v for v, d in zip(value, where)])
        else:
            setattr(obj, name, value.to(where))
    return obj


@dataclass
class DraftRecord:
    """The light generator's trajectory: for step i, the latents and scheduler state *before* step i runs."""

    latents: list = field(default_factory=list)  # torch tensors, in host memory
    schedulers: list[object] = field(default_factory=list)
    previews: list[object] = field(default_factory=list)  # uint8 previews after step i (or None)
    w_and_t: list[tuple[float, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.latents)

    def add(self, latents, scheduler) -> None:
        """Keep the state before the next step, in host memory (device memory is the scarcer one)."""
        self.latents.append(latents.detach().to("cpu", copy=True))
        self.schedulers.append(_offload(_snapshot(scheduler)))

    def resume_state(self, step: int, device="cpu") -> tuple:
        """Fresh copies of the state before `step` (latents on `device`), safe to run on without touching the record."""
        scheduler, places = self.schedulers[step]
        return self.latents[step].to(device, copy=True), _restore(_snapshot(scheduler), places)

    def nbytes(self) -> int:
        return tensor_bytes(self.latents) + tensor_bytes([sched for sched, _ in self.schedulers]) + sum(
            getattr(p, "nbytes", 0) for p in self.previews)
