"""The in-memory object store (layer 2): objects, indexes, admission, watches."""

from orchestra._store._admission import AdmissionHook, Operation
from orchestra._store._patch import merge_patch
from orchestra._store._store import Store
from orchestra._store._watch import Watch, WatchEvent

__all__ = ["AdmissionHook", "Operation", "Store", "Watch", "WatchEvent", "merge_patch"]
