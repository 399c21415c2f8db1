#!/usr/bin/env python3
"""A multiprocessing fork pool doing real work, for `stress trace record`.

The parent reads a text corpus (the .py files of this Python's standard
library, so it exists wherever Python does) into one bytearray, cuts it into
chunks, and hands chunk indices to a Pool(4) of forked workers. Workers read
their chunks from the bytearray they inherited at fork (no pickling of the
data), and for each chunk compute SHA-256 and BLAKE2b digests, compress it
with zlib, bz2 and lzma, and check the zlib round trip. maxtasksperchild
recycles the workers, so the pool forks new ones while it runs.

usage: python3 mp_pool.py [--chunk-kib 256] [--max-mib 48] [--rounds 4]
"""
import argparse
import bz2
import hashlib
import lzma
import multiprocessing as mp
import os
import sys
import sysconfig
import time
import zlib

CORPUS = bytearray()
CHUNK = 256 * 1024


def load_corpus(max_bytes):
    root = sysconfig.get_paths()["stdlib"]
    files = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "site-packages" in dirpath or "__pycache__" in dirpath:
            continue
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    CORPUS.extend(f.read())
            except OSError:
                continue
            files += 1
            if len(CORPUS) >= max_bytes:
                return files
    return files


def work(index):
    start = index * CHUNK
    data = bytes(CORPUS[start:start + CHUNK])
    z = zlib.compress(data, 6)
    if zlib.decompress(z) != data:
        raise RuntimeError("zlib round trip failed at chunk %d" % index)
    b = bz2.compress(data, 9)
    x = lzma.compress(data, preset=1)
    words = {}
    for w in data.split():
        words[w] = words.get(w, 0) + 1
    return (index, os.getpid(), hashlib.sha256(data).hexdigest()[:16],
            hashlib.blake2b(data).hexdigest()[:16],
            len(data), len(z), len(b), len(x), len(words))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunk-kib", type=int, default=256)
    ap.add_argument("--max-mib", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--maxtasksperchild", type=int, default=6)
    args = ap.parse_args()
    global CHUNK
    CHUNK = args.chunk_kib * 1024
    t0 = time.time()
    files = load_corpus(args.max_mib * 1024 * 1024)
    chunks = (len(CORPUS) + CHUNK - 1) // CHUNK
    print("corpus: %d files, %d bytes, %d chunks of %d KiB"
          % (files, len(CORPUS), chunks, args.chunk_kib), flush=True)
    ctx = mp.get_context("fork")
    pids = set()
    totals = [0, 0, 0, 0]
    with ctx.Pool(4, maxtasksperchild=args.maxtasksperchild) as pool:
        for r in range(args.rounds):
            for res in pool.imap_unordered(work, range(chunks), chunksize=1):
                pids.add(res[1])
                for i in range(4):
                    totals[i] += res[4 + i]
    print("rounds %d: raw %d, zlib %d, bz2 %d, lzma %d bytes; %d worker pids; %.1f s"
          % (args.rounds, *totals, len(pids), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
