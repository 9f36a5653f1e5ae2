"""Lumos Studio's one entry point: no arguments starts the app; `render` / `reproduce` run the CLI."""

from __future__ import annotations

import sys

CLI_COMMANDS = {"render", "reproduce", "-h", "--help"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLI_COMMANDS:
        try:
            from engine.cli import main as cli_main  # Ctrl+C while this imports is a cancel too, not a traceback

            return cli_main(argv)
        except KeyboardInterrupt:
            print("\ncancelled", file=sys.stderr)
            return 130
    if argv and not argv[0].startswith("-"):
        print(f"error: unknown command {argv[0]!r}; use render, reproduce, or no arguments for the app",
              file=sys.stderr)
        return 2
    from app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
