#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
"""Write the seed corpus of heap_fuzz (userlib/fuzz/corpus/).

Each seed is a small program in heap_fuzz's input format: an opcode byte
(taken modulo 15) followed by that operation's argument bytes.  The seeds
are written deliberately, one per area of the library, so that fuzzing
starts from inputs that already reach the LFH, medium, large and fixed-heap
paths, realloc in all its forms, walks, bad pointers and handles.

    fuzz/make_corpus.py [DIR]        (default: the corpus/ next to it)
"""
import os
import struct
import sys

(CHECK, ALLOC, ALLOC2, FREE, REALLOC, CREATE, WALK, COMPACT, LOCK, INFO,
 BAD_POINTER, BAD_HANDLE, DESTROY, SUMMARY, NATIVE) = range(15)

# create() flags
NOSER, EXEC, GENEXC, DEBUGFL, FIXED = 1, 2, 4, 8, 16
# call flags
ZERO, CNOSER, CGENEXC, INPLACE, USERBIT = 1, 2, 4, 8, 16


def fixed(i):
    """Flags for fixed heap size i: 64K, 256K, 1M, 3M+4K, 8M."""
    return FIXED | (i << 5)


def size(sel, v=0):
    """pick_size() bytes: selector, then a 16-bit value."""
    return bytes([sel]) + struct.pack('<H', v)


def tiny(n):
    return size(1, n)


def small(n):
    return size(9, n)


def medium(n):
    return size(12, n // 16)


def large(extra=0):
    return size(14, extra)


def huge(i):
    return size(15, i)


def create(slot, flags=0, init_pages=0):
    return bytes([CREATE, slot, flags, init_pages])


def alloc(heap, slot, sz, flags=0):
    return bytes([ALLOC, heap, slot, flags]) + sz


def free(heap, slot, flags=0):
    return bytes([FREE, heap, slot, flags])


def realloc(heap, slot, sz, flags=0):
    return bytes([REALLOC, heap, slot, flags]) + sz


def check(heap, slot=31):
    return bytes([CHECK, heap, slot])


def walk(heap, churn=0):
    return bytes([WALK, heap, churn])


def compact(heap, k=0):
    return bytes([COMPACT, heap, k])


def lock(heap, take):
    return bytes([LOCK, heap, 1 if take else 0])


def info(heap, v):
    return bytes([INFO, heap, v])


def bad_pointer(heap, kind, slot=0, v=0, genexc=False):
    k = kind | (0x40 if genexc else 0)
    return bytes([BAD_POINTER, heap, k, slot]) + struct.pack('<H', v)


def bad_handle(v, heap=0):
    return bytes([BAD_HANDLE]) + struct.pack('<H', v) + bytes([heap])


def destroy(heap):
    return bytes([DESTROY, heap])


def summary(heap):
    return bytes([SUMMARY, heap])


def native(heap, kind, slot, sz=size(0)):
    return bytes([NATIVE, heap, kind, slot]) + sz


def seeds():
    s = {}
    s['basic'] = (create(0) + alloc(0, 0, tiny(10)) + alloc(0, 1, small(300))
                  + alloc(0, 2, medium(40000)) + alloc(0, 3, size(0))
                  + check(0) + free(0, 1) + walk(0) + summary(0)
                  + free(0, 0) + free(0, 2) + check(0) + destroy(0))
    lfh = create(1)
    for i in range(24):
        lfh += alloc(1, i, tiny(40))
    for i in range(0, 24, 3):
        lfh += free(1, i)
    s['lfh'] = lfh + walk(1) + check(1) + info(1, 2) + compact(1)
    s['lfh_sizes'] = create(0) + b''.join(
        alloc(0, i % 32, small(16376 - 7 * i)) + free(0, i % 32)
        for i in range(40)) + size(11, 40)
    fx = b''
    for i in range(5):
        fx += create(i % 4, fixed(i))
        for j in range(12):
            fx += alloc(i % 4, j, medium(30000 * (j + 1)))
        fx += alloc(i % 4, 13, size(13, 0)) + check(i % 4) + walk(i % 4)
    s['fixed'] = fx
    s['fixed_full'] = (create(2, fixed(0)) + b''.join(
        alloc(2, i, tiny(48)) for i in range(32)) + compact(2) +
        alloc(2, 31, medium(60000)) + info(2, 2) + check(2))
    s['realloc'] = (create(0) + alloc(0, 0, tiny(20)) +
                    realloc(0, 0, small(5000), ZERO) +
                    realloc(0, 0, medium(200000)) +
                    realloc(0, 0, small(100), INPLACE) +
                    realloc(0, 0, medium(300000), INPLACE | ZERO) +
                    realloc(0, 0, large(100)) +
                    realloc(0, 0, large(50), INPLACE) +
                    realloc(0, 0, large(60000), INPLACE) +
                    realloc(0, 0, size(0)) + realloc(0, 0, huge(0)) +
                    check(0))
    s['realloc_lfh'] = (lfh + realloc(1, 1, tiny(30), INPLACE) +
                        realloc(1, 2, tiny(44), INPLACE) +
                        realloc(1, 4, tiny(41)) +
                        realloc(1, 5, medium(20000)) + check(1))
    s['large'] = (create(3) + alloc(3, 0, large(0)) +
                  alloc(3, 1, size(13, 1), ZERO) +
                  alloc(3, 2, large(65535)) + free(3, 1) + walk(3) +
                  compact(3, 2) + check(3) + destroy(3))
    s['huge'] = (create(0) + create(1, fixed(2)) +
                 b''.join(alloc(h, i, huge(i), ZERO if i & 1 else 0)
                          for h in (0, 1) for i in range(8)) +
                 alloc(1, 9, size(13, 0)) + check(0) + check(1))
    s['exceptions'] = (create(0, GENEXC) + create(1, fixed(0)) +
                       alloc(0, 0, huge(1)) + alloc(1, 0, huge(2), CGENEXC) +
                       alloc(1, 1, medium(200000), CGENEXC) +
                       alloc(0, 2, tiny(8)) +
                       realloc(0, 2, huge(0)) +
                       bad_pointer(0, 3, genexc=True))
    bp = create(0) + create(1)
    for i in range(6):
        bp += alloc(0, i, small(100 + 900 * i)) + alloc(1, i, tiny(i))
    bp += free(0, 2) + free(1, 3)
    for k in range(8):
        for v in (0, 1, 7, 300):
            bp += bad_pointer(k % 2, k, k, v)
    s['bad_pointers'] = bp + check(0) + check(1)
    s['bad_handles'] = (create(0) + alloc(0, 0, tiny(10)) +
                        b''.join(bad_handle(v) for v in
                                 (0, 1, 2, 3, 6, 9, 4099, 65535)))
    s['lock_info'] = (create(0) + create(1, NOSER) + create(2, fixed(1)) +
                      lock(0, True) + lock(0, True) + alloc(0, 0, tiny(5))
                      + walk(0) + lock(0, False) + lock(0, False) +
                      lock(0, False) + lock(1, True) + lock(1, False) +
                      lock(1, False) + info(0, 1) + info(0, 0) +
                      info(0, 2) + info(0, 0) + info(1, 2) + info(2, 2) +
                      info(2, 0) + compact(0, 3) + summary(0))
    s['walk_churn'] = (lfh + alloc(1, 25, medium(40000)) +
                       alloc(1, 26, large(3)) +
                       walk(1, 2 | (1 << 2)) + walk(1, 2 | (5 << 2)) +
                       walk(1, 3 | (9 << 2)) + walk(1, 0))
    s['destroy_live'] = (create(0) + alloc(0, 0, medium(50000)) +
                         alloc(0, 1, large(10)) + destroy(0) + create(0) +
                         alloc(0, 0, tiny(3)) + bad_pointer(0, 0) +
                         destroy(0) + create(0, fixed(3)) + check(0))
    s['native'] = (create(0) + native(0, 0, 0, tiny(12)) +
                   native(0, 8, 1, medium(70000)) + native(0, 2, 0) +
                   native(0, 1, 1) + alloc(0, 2, tiny(9)) +
                   native(0, 1, 2) + check(0))
    s['noser_exec'] = (create(0, NOSER | EXEC | DEBUGFL) +
                       b''.join(alloc(0, i, tiny(24), CNOSER)
                                for i in range(20)) +
                       b''.join(free(0, i, 1) for i in range(0, 20, 2)) +
                       walk(0) + info(0, 2) + check(0))
    mix = create(0) + create(1, fixed(4)) + create(2, NOSER) + create(3)
    for i in range(32):
        h = i % 4
        mix += alloc(h, i, size(i % 15, i * 977 % 65536), i % 32)
    for i in range(0, 32, 2):
        mix += realloc(i % 4, i, size((i * 7) % 15, i * 331), i % 16)
    mix += b''.join(check(h) for h in range(4))
    s['mixed'] = mix
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(seeds()), out))


if __name__ == '__main__':
    main()
