"""``ponder``: serve, prepare the embedded model, and what other layers add
(``ponder bench``) through the ``ponder.commands`` entry points.

``ponder serve``'s options are generated from :class:`Settings`, so every
option has its ``PONDER_*`` environment variable and one description.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points
from typing import Any, get_args, get_origin

from pydantic import ValidationError

from ponder.core.redaction import redact
from ponder.server.config import Settings

COMMANDS_GROUP = "ponder.commands"
"""Entry points that add commands (``ponder bench``, ...): each is called
with the subcommand parsers, so layers above the server add their own
without the server importing them."""


def option_texts() -> list[tuple[str, str, str, str]]:
    """Each option's flag, environment variable, default and description,
    for the help and the docs alike."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else (
            ",".join(map(str, default)) if isinstance(default, list) else str(default))
        rows.append(("--" + name.replace("_", "-"), f"PONDER_{name.upper()}", shown,
                     field.description or ""))
    return rows


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = f"PONDER_{name.upper()}"
        default = _default_text(field.get_default(call_default_factory=True))
        help_text = f"{field.description}{default} [env {env}]"
        annotation = field.annotation
        if annotation in (bool, bool | None):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(annotation) is list:
            parser.add_argument(flag, action="append", default=None, help=help_text + " (repeatable)",
                                metavar=name.upper())
        elif choices := _literal_choices(annotation):
            parser.add_argument(flag, choices=choices, default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text, metavar=name.upper())


def _default_text(value: Any) -> str:
    if value is None:
        return ""
    shown = ",".join(map(str, value)) if isinstance(value, list) else value
    return f" (default: {shown})"


def _literal_choices(annotation: Any) -> list[str] | None:
    args = get_args(annotation)
    return list(args) if args and all(isinstance(a, str) for a in args) else None


def _settings(args: argparse.Namespace) -> Settings:
    given = {name: value for name in Settings.model_fields if (value := getattr(args, name)) is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = "; ".join(map(_problem, error.errors()))
        raise SystemExit(f"ponder: invalid settings: {problems}") from None


def _problem(error: Any) -> str:
    message = redact(error["msg"].removeprefix("Value error, "))
    if not error["loc"]:  # a check across settings says which ones itself
        return message
    return f"--{'.'.join(map(str, error['loc'])).replace('_', '-')}: {message}"


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def redacting_formatter() -> logging.Formatter:
    """ponder's log line, with the secrets of any URL in it hidden, in the
    message and in a traceback alike (an HTTP client's exception quotes the
    URL it called, user info and all)."""
    return _RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def _configure_logging(level: str) -> None:
    """One format for ponder's and uvicorn's lines, each with the id of the
    request it is about (``-`` for none). vLLM keeps its own format."""
    from ponder.server.request_context import RequestIdFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(redacting_formatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def serve(args: argparse.Namespace) -> None:
    from ponder.server.runner import serve as run_server

    settings = _settings(args)
    _configure_logging(settings.log_level)
    raise SystemExit(run_server(settings))


def prepare_model(args: argparse.Namespace) -> None:
    """Prints the directory to serve: a fleet's vLLM replicas serve the
    embedded model from it, and a --probe-url pooling server the model cut
    after the probe's layer (the in-process engine makes the same cut)."""
    from pathlib import Path

    from ponder.prm.model_cut import cut_model
    from ponder.prm.probe import needs_cut
    from ponder.prm.probe_file import ProbeFileError, read_probe
    from ponder.server.embedded_model import cache_dir, embedded_model_dir

    logging.basicConfig(level="INFO")
    model = Path(args.model) if args.model else embedded_model_dir()
    if args.probe:
        try:
            layer = read_probe(Path(args.probe)).layer
            if needs_cut(model, layer):
                model = cut_model(model, layer, cache_dir() / "probe-models")
        except (OSError, ProbeFileError) as error:
            raise SystemExit(f"ponder prepare-model: {error}") from None
    print(model)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ponder",
        description="An OpenAI-compatible server that makes open models think harder: "
        "chain-of-thought, self-consistency, best-of-N and PRM-guided search, chosen per request.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser(
        "serve", help="Run the API server.",
        description="Run the OpenAI-compatible API server. Every option can also be set "
        "through its PONDER_* environment variable.",
    )
    _add_settings_options(serve_parser)
    serve_parser.set_defaults(handler=serve)

    prepare = commands.add_parser(
        "prepare-model", help="Convert the embedded model into the cache now (done on first "
        "serve otherwise) and print its directory.")
    prepare.add_argument("--model", help="a model directory instead of the embedded model")
    prepare.add_argument("--probe", metavar="FILE", help="print instead the model a --probe-url "
                         "pooling server serves for this probe: cut after the layer it reads")
    prepare.set_defaults(handler=prepare_model)

    for plugin in entry_points(group=COMMANDS_GROUP):
        plugin.load()(commands)

    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main(sys.argv[1:])
