#!/usr/bin/env python3
"""lmdb_patch.py - damage a stopped cairn-meta's LMDB store for the fsck tests, with the
LMDB tools (mdb_dump, mdb_load) only.

  lmdb_patch.py ENVDIR DB put KEYHEX VALHEX        add or replace one record
  lmdb_patch.py ENVDIR DB set32 KEYHEX OFF VALUE   replace the little-endian u32 at byte OFF
                                                   of an existing record's value
  lmdb_patch.py ENVDIR DB copy KEYHEX NEWKEYHEX     put an existing record's value under
                                                   another key too
"""
import subprocess
import sys


def dump(env, db):
    out = subprocess.run(["mdb_dump", "-s", db, env], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    end = out.index("HEADER=END")
    # mdb_load does not take back every header line mdb_dump writes
    header = [l for l in out[:end + 1] if not l.startswith("db_pagesize=")]
    body = out[end + 1:]
    recs = {}
    for i in range(0, len(body) - 1, 2):
        if body[i] == "DATA=END":
            break
        recs[body[i].strip()] = body[i + 1].strip()
    return header, recs


def load(env, db, header, key, val):
    text = "\n".join(header + [" " + key, " " + val, "DATA=END"]) + "\n"
    subprocess.run(["mdb_load", "-s", db, env], input=text, check=True, text=True)


def main():
    env, db, op = sys.argv[1:4]
    header, recs = dump(env, db)
    key = sys.argv[4].lower()
    if op == "put":
        load(env, db, header, key, sys.argv[5].lower())
    elif op == "set32":
        off, value = int(sys.argv[5]), int(sys.argv[6])
        val = bytearray.fromhex(recs[key])
        val[off:off + 4] = value.to_bytes(4, "little")
        load(env, db, header, key, val.hex())
    elif op == "copy":
        load(env, db, header, sys.argv[5].lower(), recs[key])
    else:
        sys.exit("unknown operation " + op)


main()
