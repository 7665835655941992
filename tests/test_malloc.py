"""``import tinyseg`` makes glibc serve large arrays from its reusable heap, not fresh mmaps."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# Bytes that glibc holds in mmapped blocks while a 64 MB array is alive (mallinfo2's hblkhd).
SCRIPT = """
import ctypes, numpy as np, tinyseg

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
a = np.ones(16 << 20, np.float32)
print(libc.mallinfo2().hblkhd)
"""


def _mmapped_bytes(**env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env={**os.environ, **env}, text=True,
                         capture_output=True, check=True).stdout
    return int(out.split()[-1])


def test_large_arrays_come_from_the_heap_and_the_opt_out_keeps_glibcs_mmap():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("no glibc mallinfo2 (glibc < 2.33)")
    assert _mmapped_bytes() < (64 << 20)                                  # heap: reused next step
    assert _mmapped_bytes(TINYSEG_SYSTEM_MALLOC="1") >= (64 << 20)       # glibc's default: mmap
