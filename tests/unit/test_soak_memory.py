"""The soak tells glibc's thread arenas (a 64 MiB reservation on a 64 MiB
boundary, in use then reserved) from other anonymous mappings."""

from __future__ import annotations

from ponder.bench.soak import ARENA_BYTES, _arenas

MIB = 1 << 20


def test_thread_arenas_are_counted_by_their_reservation() -> None:
    arena = 3 * ARENA_BYTES
    spans = [
        (arena, arena + 5 * MIB), (arena + 5 * MIB, arena + ARENA_BYTES),  # one arena, two parts
        (5 * ARENA_BYTES, 6 * ARENA_BYTES),  # one arena, all in use
        (7 * ARENA_BYTES, 7 * ARENA_BYTES + 8 * MIB),  # aligned, but not a reservation
        (9 * ARENA_BYTES + MIB, 10 * ARENA_BYTES + MIB),  # 64 MiB, not aligned
    ]
    assert _arenas(spans) == 2
