"""Lumos Studio's one entry point: no arguments starts the app; `render` / `reproduce` run the CLI."""

from __future__ import annotations

import os
import sys

CLI_COMMANDS = {"render", "reproduce", "-h", "--help"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "convert-nexus":  # the release's plain pickles to safetensors (engine/nexus/convert.py)
        from engine.nexus.convert import main as convert_main

        return convert_main(argv[1:])
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
    if argv and argv[0] == "--version":
        from engine.api import __version__

        print(f"Lumos Studio {__version__}")
        return 0
    problem = no_display()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from app import run

    return run(argv)


def no_display() -> str | None:
    """Why the window cannot open here (Qt would abort with SIGABRT after a page of plugin messages), or None."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set): start Lumos Studio "
            "from a desktop session, use `main.py render` for headless work, or set QT_QPA_PLATFORM=offscreen")


if __name__ == "__main__":
    sys.exit(main())
