"""Entry point of a fuzz child process: ``python -m tests.fuzz.child TARGET ...`` (see
:func:`tests.fuzz.engine.run_isolated`)."""

import sys

from tests.fuzz.engine import child_main

if __name__ == "__main__":
    child_main(sys.argv[1:])
