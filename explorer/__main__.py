"""`python -m explorer` and the `attention-explorer` script: the GUI, or a headless subcommand."""

import sys


def main(argv: list[str] | None = None) -> int:
    from explorer.cli import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
