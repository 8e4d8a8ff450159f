"""The JSON Schema of the schema file format, derived from the typed model."""

from __future__ import annotations

import json

import msgspec

from codegen.schema import SchemaFile

__all__ = ["schema_file_json_schema"]


def schema_file_json_schema() -> str:
    (schema,), components = msgspec.json.schema_components(
        [SchemaFile], ref_template="#/$defs/{name}"
    )
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://toolkit.invalid/schema-file.json",
        "title": "toolkit schema file",
        "description": "One service's schema file: its channels, messages, views and types (docs/schema.md).",
        **schema,
        "$defs": components,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
