"""A least-recently-used store bounded by bytes, and the draft record it keeps for resuming refines."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch


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


@dataclass
class DraftRecord:
    """The light generator's trajectory: for step i, the latents and scheduler state *before* step i runs."""

    latents: list[torch.Tensor] = field(default_factory=list)
    schedulers: list[object] = field(default_factory=list)
    previews: list[object] = field(default_factory=list)  # uint8 previews after step i (or None)
    w_and_t: list[tuple[float, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.latents)

    def add(self, latents: torch.Tensor, scheduler) -> None:
        self.latents.append(latents.detach().clone())
        self.schedulers.append(copy.deepcopy(scheduler))

    def resume_state(self, step: int) -> tuple[torch.Tensor, object]:
        """Fresh copies of the state before `step`, safe to run on without touching the record."""
        return self.latents[step].clone(), copy.deepcopy(self.schedulers[step])

    def nbytes(self) -> int:
        return tensor_bytes(self.latents) + tensor_bytes(self.schedulers) + sum(
            getattr(p, "nbytes", 0) for p in self.previews)
