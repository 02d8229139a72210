"""The long fuzz run: every decoder property test with many examples (not part of CI).

    python scripts/fuzz.py [--examples 20000]

Runs ``tests/test_fuzz.py`` and the protocol's fuzz tests under hypothesis's ``long`` profile and
prints how many examples each property ran and how long it took. A failure prints hypothesis's
shrunk counterexample; fix the decoder and add the example to the test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["tests/test_fuzz.py", "tests/test_protocol.py::test_random_bytes_only_raise_protocol_error",
           "tests/test_protocol.py::test_random_json_only_raises_protocol_error"]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20000, help="examples per property")
    args = ap.parse_args()
    env = dict(os.environ, HYPOTHESIS_PROFILE="long", FUZZ_EXAMPLES=str(args.examples))
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           "--durations=0", *TARGETS]  # fmt: skip
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"fuzz: {args.examples} examples per property, {time.monotonic() - t0:.0f} s, "
          f"{'no failures' if rc == 0 else 'FAILURES (see above)'}")  # fmt: skip
    return rc


if __name__ == "__main__":
    sys.exit(main())
