"""``python -m minivit COMMAND``: the command line (its parser and its one error handler: minivit/cli/main.py)."""
import sys

from minivit.cli.main import build_parser, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
