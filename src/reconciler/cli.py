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
from .api.parse import parse
from .api.syntax import is_dns1123_label
from .api.types import SpecError
from .config import ConfigError, OperatorConfig
from .crds import ConversionWebhook, crd_manifest
from .resources import build_children, to_yaml
from .runtime.operator import run

EXIT_INVALID = 2
DEFAULT_WEBHOOK_SERVICE_PORT = 443


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
    render.add_argument(
        "file", help="a LocustTest manifest (YAML, one or more documents; - for stdin)"
    )
    crd = commands.add_parser(
        "crd",
        help="print the LocustTest CustomResourceDefinition",
        description="Print the LocustTest CRD. Without a conversion webhook only v2 is served; "
        "with one (the operator's /convert, run with ENABLE_WEBHOOKS=true), v1 is served too.",
    )
    crd.add_argument(
        "--webhook-service",
        metavar="NAMESPACE/NAME",
        help="the Service in front of the operator's conversion webhook",
    )
    crd.add_argument(
        "--webhook-port",
        metavar="PORT",
        help=f"that Service's port (default {DEFAULT_WEBHOOK_SERVICE_PORT})",
    )
    crd.add_argument(
        "--ca-bundle",
        metavar="FILE",
        help="the PEM CA certificate that signed the webhook's serving certificate "
        "(required with --webhook-service)",
    )
    commands.add_parser("version", help="print the version")
    args = parser.parse_args(argv)

    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "crd":
        return _crd(args)
    try:
        config = OperatorConfig.from_env()
    except ConfigError as error:
        print(f"locust-operator: {error}", file=sys.stderr)
        return EXIT_INVALID
    if args.command == "render":
        return _render(args.file, config)
    return run(config)


def _render(file: str, config: OperatorConfig) -> int:
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


def _crd(args: argparse.Namespace) -> int:
    try:
        webhook = _conversion_webhook(args)
    except ValueError as error:
        print(f"locust-operator: {error}", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(yaml.dump(crd_manifest(webhook), Dumper=_BlockTextDumper, sort_keys=False))
    return 0


def _conversion_webhook(args: argparse.Namespace) -> ConversionWebhook | None:
    """The webhook the options describe, or None without --webhook-service; ValueError if wrong."""
    if args.webhook_service is None:
        if args.webhook_port is not None or args.ca_bundle is not None:
            raise ValueError("--webhook-port and --ca-bundle need --webhook-service")
        return None
    namespace, _, name = args.webhook_service.partition("/")
    if not (is_dns1123_label(namespace) and is_dns1123_label(name)):
        raise ValueError(
            f'--webhook-service: expected NAMESPACE/NAME, got "{args.webhook_service}"'
        )
    port = args.webhook_port or str(DEFAULT_WEBHOOK_SERVICE_PORT)
    if not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f'--webhook-port: expected a port from 1 to 65535, got "{port}"')
    if args.ca_bundle is None:
        raise ValueError("--ca-bundle is required with --webhook-service")
    try:
        ca_bundle = Path(args.ca_bundle).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {args.ca_bundle}: {error.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in ca_bundle:
        raise ValueError(f"--ca-bundle: {args.ca_bundle} holds no PEM certificate")
    return ConversionWebhook(
        service_name=name, service_namespace=namespace, port=int(port), ca_bundle=ca_bundle
    )


class _BlockTextDumper(yaml.SafeDumper):
    """Writes multi-line text (the CRD's CEL rules) as readable `|` blocks, not escaped strings."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockTextDumper.add_representer(str, _BlockTextDumper.represent_str)


def _yaml_reason(error: yaml.YAMLError) -> str:
    """Where and what, on one line: PyYAML's own text spans several lines with a source excerpt."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(error).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
