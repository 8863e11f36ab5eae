"""`python -m explorer` and the `attention-explorer` script: the GUI, or a headless subcommand."""

import os
import sys

# OpenMP threads that wait for each other sleep instead of spinning. On a CPU shared with other
# programs a spinning thread holds a core its partner needs: a real-size Marian trace took 10.5 s
# with two threads (0.55 s with them sleeping) and a training step 1.5 s (0.9 s). Read when torch
# is first imported, so it is set before; a value already in the environment is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    from explorer.cli import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
