"""`locust-operator`: run the operator, or render, offline, what it would create.

Exit codes: 0 success, 1 an unexpected failure at run time, 2 invalid input (a bad setting, a file
that is not a valid LocustTest); the one-line reason goes to stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import __version__
from .config import ConfigError, OperatorConfig
from .crds import crd_text

EXIT_INVALID = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="locust-operator",
        description="Kubernetes operator for distributed Locust load tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="start the operator (kubeconfig or in-cluster)")
    render = commands.add_parser(
        "render", help="print the objects the operator would create for a LocustTest file"
    )
    render.add_argument("file", help="a LocustTest manifest (YAML, one or more documents; - for stdin)")
    commands.add_parser("crd", help="print the LocustTest CustomResourceDefinition")
    commands.add_parser("version", help="print the version")
    args = parser.parse_args(argv)

    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "crd":
        sys.stdout.write(crd_text())
        return 0
    try:
        config = OperatorConfig.from_env()
    except ConfigError as error:
        print(f"locust-operator: {error}", file=sys.stderr)
        return EXIT_INVALID
    if args.command == "render":
        return _render(args.file, config)
    from .runtime import run  # imported late: render and crd never load the async runtime

    return run(config)


def _render(file: str, config: OperatorConfig) -> int:
    from .resources import build_children, to_yaml
    from .spec import SpecError, parse

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except OSError as error:
        print(f"locust-operator: cannot read {file}: {error.strerror}", file=sys.stderr)
        return EXIT_INVALID
    except UnicodeDecodeError:
        print(f"locust-operator: {file}: not valid YAML: not UTF-8 text", file=sys.stderr)
        return EXIT_INVALID
    except yaml.YAMLError as error:
        print(f"locust-operator: {file}: not valid YAML: {_yaml_reason(error)}", file=sys.stderr)
        return EXIT_INVALID
    if not documents:
        print(f"locust-operator: {file}: no LocustTest found", file=sys.stderr)
        return EXIT_INVALID
    objects = []
    for index, document in enumerate(documents):
        try:
            objects.extend(build_children(parse(document), config))
        except SpecError as error:
            where = f"{file} (document {index + 1})" if len(documents) > 1 else file
            print(f"locust-operator: {where}: {error}", file=sys.stderr)
            return EXIT_INVALID
    sys.stdout.write(to_yaml(objects))
    return 0


def _yaml_reason(error: yaml.YAMLError) -> str:
    """Where and what, on one line: PyYAML's own text spans several lines with a source excerpt."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(error).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
