"""A compact multimap of 64-bit integers for millions of entries: open addressing with linear probing in two
``array('q')`` (16 bytes a slot, load at most one half: 32-64 bytes an entry, against about 200 for a dict entry
with its key and value objects). It keeps what the gateway must remember of a message awaiting its receipt once the
message itself has left memory (``Correlator.retire``). Pure; no I/O.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
_DELETED = 1
_MIN_CAPACITY = 1024


class IntMultimap:
    """int64 key → int64 values (a key may hold several values: hashes of different ids can collide)."""

    __slots__ = ("_deleted", "_keys", "_mask", "_reserved", "_size", "_values")

    def __init__(self, capacity: int = _MIN_CAPACITY) -> None:
        size = _MIN_CAPACITY
        while size < capacity:
            size *= 2
        self._keys = array("q", bytes(8 * size))
        self._values = array("q", bytes(8 * size))
        self._mask = size - 1
        self._size = 0
        self._deleted = 0
        self._reserved: dict[int, list[int]] = {}  # keys 0 and 1 mark empty and deleted slots: kept aside

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def add(self, key: int, value: int) -> None:
        if key in (_EMPTY, _DELETED):
            self._reserved.setdefault(key, []).append(value)
            self._size += 1
            return
        if (self._size + self._deleted + 1) * 2 > self.capacity:
            self._rebuild(self.capacity * 2 if (self._size + 1) * 4 > self.capacity else self.capacity)
        keys, mask = self._keys, self._mask
        slot = key & mask
        while keys[slot] not in (_EMPTY, _DELETED):
            slot = (slot + 1) & mask
        if keys[slot] == _DELETED:
            self._deleted -= 1
        keys[slot] = key
        self._values[slot] = value
        self._size += 1

    def get(self, key: int) -> list[int]:
        """Every value stored under ``key`` (usually one or none)."""
        if key in (_EMPTY, _DELETED):
            return list(self._reserved.get(key, ()))
        keys, values, mask = self._keys, self._values, self._mask
        slot = key & mask
        found: list[int] = []
        while (current := keys[slot]) != _EMPTY:
            if current == key:
                found.append(values[slot])
            slot = (slot + 1) & mask
        return found

    def remove(self, key: int, value: int) -> bool:
        """Drop one ``key → value`` entry; False if there was none."""
        if key in (_EMPTY, _DELETED):
            aside = self._reserved.get(key, [])
            if value not in aside:
                return False
            aside.remove(value)
            self._size -= 1
            return True
        keys, values, mask = self._keys, self._values, self._mask
        slot = key & mask
        while (current := keys[slot]) != _EMPTY:
            if current == key and values[slot] == value:
                keys[slot] = _DELETED
                self._size -= 1
                self._deleted += 1
                return True
            slot = (slot + 1) & mask
        return False

    def _rebuild(self, capacity: int) -> None:
        old_keys, old_values = self._keys, self._values
        self._keys = array("q", bytes(8 * capacity))
        self._values = array("q", bytes(8 * capacity))
        self._mask = capacity - 1
        self._size = sum(len(values) for values in self._reserved.values())
        self._deleted = 0
        for key, value in zip(old_keys, old_values, strict=True):
            if key not in (_EMPTY, _DELETED):
                self._put(key, value)

    def _put(self, key: int, value: int) -> None:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while keys[slot] != _EMPTY:
            slot = (slot + 1) & mask
        keys[slot] = key
        self._values[slot] = value
        self._size += 1
