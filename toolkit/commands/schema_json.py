"""``toolkit schema-json``: the JSON Schema of the schema file format, for editors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "schema-json",
        help="print (or write) the JSON Schema of the schema file format",
        description="JSON Schema of toolkit schema files, for editors that validate TOML (Taplo, Even Better TOML).",
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codegen.schema import schema_file_json_schema

    text = schema_file_json_schema()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
